"""Matchers (registered in ``MODELS``) and their data preprocessor."""
from .correlation_matcher import CorrelationMatcher, build_with_derived
from .data_preprocessor import PairDataPreprocessor

__all__ = ['CorrelationMatcher', 'PairDataPreprocessor', 'build_with_derived']
