"""Datasets and transforms (registries ``DATASETS`` and ``TRANSFORMS``).

- :class:`SPairDataset`, :class:`PFPascalDataset`, :class:`PFWillowDataset`
  read the official layouts of the three benchmarks.
- :class:`COCOKeypointsDataset` pairs the instances of any COCO keypoints
  file; :class:`AP10KDataset` applies GeoAware-SC's AP-10K protocol to it.
- :mod:`corrkit.datasets.transforms` moves images, keypoints and boxes
  together with ``torchvision.transforms.v2``.
- :func:`make_mini_dataset` writes the embedded SPair-format mini dataset
  from photos shipped inside installed packages.
- :mod:`corrkit.datasets.download` fetches, verifies and extracts the
  public archives.
"""
from .base import AnnotationError, PairDataset
from .coco_keypoints import AP10KDataset, COCOKeypointsDataset
from .download import DatasetNotFoundError
from .mini import make_mini_dataset
from .pfpascal import PFPascalDataset
from .pfwillow import PFWillowDataset
from .spair import SPairDataset
from .transforms import (LoadPairImages, PackPairInputs, PairFlip, PairPhotometricAugment,
                         PairRandomCrop, PairResize)
from .worker import seed_worker_from_torch

__all__ = [
    'AP10KDataset', 'AnnotationError', 'COCOKeypointsDataset', 'DatasetNotFoundError',
    'LoadPairImages', 'PFPascalDataset', 'PFWillowDataset', 'PackPairInputs', 'PairDataset', 'PairFlip', 'PairPhotometricAugment',
    'PairRandomCrop', 'PairResize', 'SPairDataset', 'make_mini_dataset', 'seed_worker_from_torch',
]
