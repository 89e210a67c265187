"""High-level API: build a matcher from a config, match images, evaluate."""
from .evaluate import evaluate
from .inference import MatchResult, init_matcher, load_weights, match_pair

__all__ = ['MatchResult', 'evaluate', 'init_matcher', 'load_weights', 'match_pair']
