"""Shared fixtures: offline hubs, the repository root, tiny models."""
import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# Tests never reach a model hub: fail fast instead of retrying over the network.
os.environ.setdefault('HF_HUB_OFFLINE', '1')
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import plugins.layer_weighted_refiner  # noqa: E402,F401  (registers the example plugin)

#: A matcher small enough to train in a test: 32 x 32 pairs, a 4 x 4 correlation grid.
TINY_MATCHER = dict(
    type='CorrelationMatcher', input_size=32,
    backbone=dict(type='TimmHypercolumnBackbone', model_name='test_resnet', taps=(2, 3)),
    correlation=dict(type='MultiChannelCorrelation'),
    refiner=dict(type='MatchToMatchRefiner', depth=1, num_heads=2, head_dims=4),
    head=dict(type='KernelSoftArgmaxHead', upsample_factor=2, sigma=3.0),
)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope='session')
def repo() -> Path:
    return REPO


@pytest.fixture(scope='session')
def tiny_matcher():
    from corrkit.apis import init_matcher
    torch.manual_seed(0)
    return init_matcher(REPO / 'configs' / 'transformatcher_tiny.py')


def offline_options(cfg) -> dict:
    """cfg_options that make a config build without any pretrained weights."""
    from corrkit.models.backbones import random_weights_options
    return random_weights_options(cfg)
