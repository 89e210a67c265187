"""Correlation builders (registry ``CORRELATIONS``): two feature lists → 4D correlation."""
from .multi_channel import MultiChannelCorrelation

__all__ = ['MultiChannelCorrelation']
