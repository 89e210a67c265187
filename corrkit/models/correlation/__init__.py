"""Correlation builders (registry ``CORRELATIONS``): two feature lists → 4D correlation."""
from .multi_channel import MultiChannelCorrelation
from .single_channel import ConcatCorrelation, MeanCorrelation

__all__ = ['ConcatCorrelation', 'MeanCorrelation', 'MultiChannelCorrelation']
