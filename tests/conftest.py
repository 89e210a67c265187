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
from tests.browser import _chromium, browser_page  # noqa: E402,F401  (pages in Chromium)

#: A matcher small enough to train in a test: 32 x 32 pairs, a 4 x 4 correlation grid.
TINY_MATCHER = dict(
    type='CorrelationMatcher', input_size=32,
    backbone=dict(type='TimmHypercolumnBackbone', model_name='test_resnet', taps=(2, 3)),
    correlation=dict(type='MultiChannelCorrelation'),
    refiner=dict(type='MatchToMatchRefiner', depth=1, num_heads=2, head_dims=4),
    head=dict(type='KernelSoftArgmaxHead', upsample_factor=2, sigma=3.0),
)

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def random_samples(n_kps=(3, 5), size=32):
    """One data sample per entry of ``n_kps``: random keypoints on a ``size`` square, the
    targets the sources reversed, the first keypoint of each invalid."""
    from corrkit.structures import PairDataSample
    out = []
    for k in n_kps:
        kps = torch.rand(k, 2) * (size - 1)
        valid = torch.ones(k, dtype=torch.bool)
        valid[0] = False
        out.append(PairDataSample(src_kps=kps, trg_kps=kps.flip(0), kps_valid=valid))
    return out


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
