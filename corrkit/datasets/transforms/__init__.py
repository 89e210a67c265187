"""Pair transforms: each one takes and returns the per-pair ``results`` dict.

A pipeline is a list of these, built from ``TRANSFORMS`` configs. Geometric
transforms move images, keypoints (``tv_tensors.KeyPoints``) and boxes
(``tv_tensors.BoundingBoxes``) together through ``torchvision.transforms.v2``.
"""
from .formatting import PackPairInputs
from .geometric import PairFlip, PairMirrorSource, PairRandomCrop, PairResize
from .loading import LoadPairImages
from .photometric import PairPhotometricAugment

__all__ = ['LoadPairImages', 'PackPairInputs', 'PairFlip', 'PairMirrorSource', 'PairPhotometricAugment',
           'PairRandomCrop', 'PairResize']
