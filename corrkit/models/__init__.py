"""Models: the role contracts and the matchers.

Components live in the role subpackages (``backbones``, ``correlation``,
``refiners``, ``heads``, ``necks``, ``keypoint_heads``, ``losses``); each registry
imports its subpackage the first time it is searched, so importing the contracts here
does not pull in timm or torchvision.
"""
from .base import (Backbone, ConfigConflictError, CorrelationBuilder, FlowHead, FlowPrediction,
                   ImageFeatures, ImageFrame, KeypointHead, KeypointPrediction, MatchOutputs,
                   Matcher, Neck, PointMatches, Refiner)
from .matchers import (CorrelationMatcher, KeypointMatcher, PairDataPreprocessor,
                       build_with_derived)

__all__ = ['Backbone', 'CorrelationBuilder', 'Refiner', 'FlowHead', 'FlowPrediction', 'Neck',
           'KeypointHead', 'KeypointPrediction', 'ImageFeatures', 'ImageFrame', 'Matcher',
           'PointMatches',
           'CorrelationMatcher', 'KeypointMatcher', 'ConfigConflictError', 'MatchOutputs',
           'PairDataPreprocessor',
           'build_with_derived']
