import torch

from corrkit.registry import REFINERS
from corrkit.testing import check_refiner

import mutual_refiner  # noqa: F401  (registers MutualMatchRefiner)


def test_mutual_match_refiner_keeps_the_refiner_contract():
    check_refiner(REFINERS.build(dict(type='MutualMatchRefiner', in_channels=4)))


def test_it_starts_as_the_mean_of_the_layers():
    refiner = REFINERS.build(dict(type='MutualMatchRefiner', in_channels=3))
    corr = torch.rand(2, 3, 4, 5, 3, 2)
    torch.testing.assert_close(refiner(corr), corr.mean(dim=1, keepdim=True))
