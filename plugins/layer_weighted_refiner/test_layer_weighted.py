"""The plugin's own test, as docs/guides/plugins.md shows it, and one of its behaviour."""
import pytest
import torch

from corrkit.registry import REFINERS
from corrkit.testing import check_refiner

import plugins.layer_weighted_refiner  # noqa: F401  (registers the refiner)


def test_layer_weighted_refiner_keeps_the_refiner_contract():
    check_refiner(REFINERS.build(dict(type='LayerWeightedRefiner', in_channels=4)))


@pytest.mark.parametrize('in_channels', [1, 26])
def test_starts_as_the_scaled_mean_of_the_layers(in_channels):
    refiner = REFINERS.build(dict(type='LayerWeightedRefiner', in_channels=in_channels,
                                  init_scale=2.0))
    corr = torch.rand(2, in_channels, 3, 3, 4, 4)
    torch.testing.assert_close(refiner(corr), 2.0 * corr.mean(1, keepdim=True))
