"""The match-to-match refiner's cost grows linearly with the number of matches."""
import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from corrkit.models.refiners import MatchToMatchRefiner


def count_flops(module, x):
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(x)
    return counter.get_total_flops()


@pytest.mark.parametrize('depth', [1, 6])
def test_flops_linear_in_matches(depth):
    refiner = MatchToMatchRefiner(in_channels=26, depth=depth)
    small = count_flops(refiner, torch.rand(1, 26, 6, 6, 6, 6))
    large = count_flops(refiner, torch.rand(1, 26, 9, 9, 9, 9))
    assert small > 0
    # linear: the ratio of FLOPs is the ratio of tokens, 9^4 / 6^4 (quadratic would square it)
    assert large / small == pytest.approx((9 / 6) ** 4, rel=0.01)
