"""Matchers (registered in ``MODELS``) and their data preprocessor."""
from .correlation_matcher import CorrelationMatcher, build_with_derived
from .data_preprocessor import PairDataPreprocessor
from .feature_matcher import FeatureMatcher
from .keypoint_matcher import KeypointMatcher

__all__ = ['CorrelationMatcher', 'FeatureMatcher', 'KeypointMatcher', 'PairDataPreprocessor',
           'build_with_derived']
