"""Keypoint heads against direct definitions; confidences as documented."""
import numpy as np
import pytest
import torch

from corrkit.models.keypoint_heads import (NearestNeighbourHead, SoftArgmaxKeypointHead,
                                           WindowSoftArgmaxHead)
from corrkit.registry import KEYPOINT_HEADS
from tests.ops.test_keypoint_heads import cell_xy, direct_window_soft_argmax


@pytest.fixture
def sim():
    return torch.rand(2, 3, 6, 5, generator=torch.Generator().manual_seed(0),
                      dtype=torch.float64) * 2 - 1


def softmax(s, temperature):
    flat = s.reshape(*s.shape[:2], -1) / temperature
    p = np.exp(flat - flat.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)).reshape(s.shape)


def test_nearest_neighbour_is_the_best_cell_and_its_score(sim):
    pred = NearestNeighbourHead()(sim)
    s = sim.numpy()
    for i in range(2):
        for j in range(3):
            r, c = np.unravel_index(np.argmax(s[i, j]), (6, 5))
            np.testing.assert_allclose(pred.kps[i, j].numpy(), cell_xy(r, c, 6, 5), atol=1e-12)
            assert pred.confidence[i, j].item() == pytest.approx((s[i, j].max() + 1) / 2)
    assert not NearestNeighbourHead.differentiable


def test_soft_argmax_head_is_the_expectation_and_the_peak_probability(sim):
    pred = SoftArgmaxKeypointHead(temperature=0.1)(sim)
    p = softmax(sim.numpy(), 0.1)
    grid = np.stack([[cell_xy(r, c, 6, 5) for c in range(5)] for r in range(6)])  # (6, 5, 2)
    np.testing.assert_allclose(pred.kps.numpy(), np.einsum('bkhw,hwc->bkc', p, grid), rtol=1e-10)
    np.testing.assert_allclose(pred.confidence.numpy(), p.reshape(2, 3, -1).max(-1), rtol=1e-10)


@pytest.mark.parametrize('window', [3, 5, 15])
def test_window_head_matches_the_direct_definition(sim, window):
    pred = WindowSoftArgmaxHead(window=window, temperature=0.05)(sim)
    np.testing.assert_allclose(pred.kps.numpy(),
                               direct_window_soft_argmax(sim.numpy(), window, 0.05), rtol=1e-10)
    # confidence: the global softmax's mass inside the clipped box, with loops
    p, s, half = softmax(sim.numpy(), 0.05), sim.numpy(), window // 2
    for i in range(2):
        for j in range(3):
            r0, c0 = np.unravel_index(np.argmax(s[i, j]), (6, 5))
            mass = sum(p[i, j, r, c] for r in range(6) for c in range(5)
                       if abs(r - r0) <= half and abs(c - c0) <= half)
            assert pred.confidence[i, j].item() == pytest.approx(mass, rel=1e-10)


def test_window_head_at_a_corner_averages_over_the_clipped_box():
    sim = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    sim[0, 0, 3, 3] = 1.0
    sim[0, 0, 3, 2] = sim[0, 0, 2, 3] = sim[0, 0, 2, 2] = 1.0 - 1e-9  # a flat 2 x 2 corner
    kps = WindowSoftArgmaxHead(window=3, temperature=1.0)(sim).kps
    # the 3 x 3 box keeps only the 2 x 2 corner: its mean, (2.5, 2.5) cells = 2/3 normalised
    np.testing.assert_allclose(kps[0, 0].numpy(), [2 / 3, 2 / 3], rtol=1e-8)
    np.testing.assert_allclose(kps.numpy(), direct_window_soft_argmax(sim.numpy(), 3, 1.0))


def test_window_head_ignores_a_distant_peak_that_soft_argmax_follows():
    sim = torch.full((1, 1, 9, 9), -1.0)
    sim[0, 0, 1, 1], sim[0, 0, 7, 7] = 0.9, 0.89
    window = WindowSoftArgmaxHead(window=3)(sim)
    soft = SoftArgmaxKeypointHead()(sim)
    torch.testing.assert_close(window.kps, torch.tensor([[[-0.75, -0.75]]]))
    assert soft.kps[0, 0, 0] > -0.5
    assert 0.5 < window.confidence.item() < 0.7  # the far peak holds the rest of the mass


@pytest.mark.parametrize('cfg, match', [
    (dict(type='WindowSoftArgmaxHead', window=4), 'odd'),
    (dict(type='WindowSoftArgmaxHead', window=1), 'NearestNeighbourHead'),
    (dict(type='WindowSoftArgmaxHead', temperature=0), 'temperature'),
    (dict(type='SoftArgmaxKeypointHead', temperature=-1.0), 'temperature'),
])
def test_bad_arguments_name_the_class(cfg, match):
    with pytest.raises(ValueError, match=match):
        KEYPOINT_HEADS.build(cfg)
    with pytest.raises(ValueError, match=cfg['type']):
        KEYPOINT_HEADS.build(cfg)


def test_defaults_are_geoaware_sc_s():
    head = KEYPOINT_HEADS.build(dict(type='WindowSoftArgmaxHead'))
    assert (head.window, head.temperature) == (15, 0.02)
