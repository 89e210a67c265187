"""High-level API: build a matcher from a config, match images, train, evaluate, analyse."""
from .benchmark import benchmark_configs
from .evaluate import evaluate
from .inference import MatchResult, init_matcher, load_weights, match_pair, resolve_checkpoint
from .nonlocality import nonlocality_report
from .train import train

__all__ = ['MatchResult', 'benchmark_configs', 'evaluate', 'init_matcher', 'load_weights',
           'match_pair', 'nonlocality_report', 'resolve_checkpoint', 'train']
