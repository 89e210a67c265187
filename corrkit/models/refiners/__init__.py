"""Refiners (registry ``REFINERS``): 4D correlation → refined 4D correlation."""
from .match_to_match import MatchToMatchRefiner
from .mean import MeanRefiner
from .ncnet import NCNetRefiner

__all__ = ['MatchToMatchRefiner', 'MeanRefiner', 'NCNetRefiner']
