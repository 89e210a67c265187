import numpy as np
import pytest
import torch
from PIL import Image

from corrkit.visualization import tps_warp


def test_warp_through_shifted_matches_shifts_the_image():
    rng = np.random.default_rng(0)
    src = Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    trg = Image.new('RGB', (60, 40))
    points = torch.tensor([[5.0, 5.0], [50.0, 8.0], [30.0, 30.0], [10.0, 35.0], [55.0, 33.0]])
    warped = np.asarray(tps_warp(src, trg, points, points + torch.tensor([4.0, 3.0])))
    # target pixel (x, y) shows source pixel (x - 4, y - 3)
    np.testing.assert_allclose(warped[3 + 5:30, 4 + 5:50].astype(float),
                               np.asarray(src)[5:27, 5:46].astype(float), atol=1.0)
    assert (warped[:2, :] == 0).all()  # above the shifted source: nothing to show


def test_warp_needs_three_pairs():
    img = Image.new('RGB', (8, 8))
    with pytest.raises(ValueError, match='N >= 3'):
        tps_warp(img, img, [[0, 0], [1, 1]], [[0, 0], [1, 1]])
