"""Models: the role contracts, their registered components and the matchers."""
from . import backbones, correlation, heads, losses, refiners  # noqa: F401  (registration)
from .base import (Backbone, ConfigConflictError, CorrelationBuilder, CorrelationMatcher, FlowHead,
                   FlowPrediction, MatchOutputs, Refiner)
from .matchers import PairDataPreprocessor, build_with_derived

__all__ = ['Backbone', 'CorrelationBuilder', 'Refiner', 'FlowHead', 'FlowPrediction',
           'CorrelationMatcher', 'ConfigConflictError', 'MatchOutputs', 'PairDataPreprocessor',
           'build_with_derived']
