"""High-level API: build a matcher from a config and match images."""
from .inference import MatchResult, init_matcher, load_weights, match_pair

__all__ = ['MatchResult', 'init_matcher', 'load_weights', 'match_pair']
