"""argmax / soft-argmax / window soft-argmax on per-keypoint maps, against direct numpy definitions."""
import numpy as np
import pytest
import torch

from corrkit.ops import (argmax_2d, soft_argmax_2d, window_mask_2d, window_soft_argmax_2d,
                         window_softmax_2d)


def cell_xy(row, col, h, w):
    """Normalised (x, y) of a cell centre, align_corners=True, written out."""
    x = -1 + 2 * col / (w - 1) if w > 1 else 0.0
    y = -1 + 2 * row / (h - 1) if h > 1 else 0.0
    return np.array([x, y])


def direct_window_soft_argmax(scores, window, temperature):
    """One map at a time, with loops: softmax over the clipped box around the argmax."""
    b, k, h, w = scores.shape
    out = np.zeros((b, k, 2))
    for i in range(b):
        for j in range(k):
            s = scores[i, j]
            r0, c0 = np.unravel_index(np.argmax(s), s.shape)
            half = window // 2
            cells = [(r, c) for r in range(h) for c in range(w)
                     if abs(r - r0) <= half and abs(c - c0) <= half]
            logits = np.array([s[r, c] / temperature for r, c in cells])
            p = np.exp(logits - logits.max())
            p /= p.sum()
            out[i, j] = sum(pi * cell_xy(r, c, h, w) for pi, (r, c) in zip(p, cells))
    return out


@pytest.fixture
def scores():
    return torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0),
                      dtype=torch.float64) * 2 - 1


def test_argmax_2d_is_the_best_cell(scores):
    got = argmax_2d(scores).numpy()
    for i in range(2):
        for j in range(3):
            r, c = np.unravel_index(np.argmax(scores[i, j].numpy()), (5, 7))
            np.testing.assert_allclose(got[i, j], cell_xy(r, c, 5, 7), atol=1e-12)
    assert not argmax_2d(scores.requires_grad_()).requires_grad


def test_soft_argmax_2d_is_the_expectation_under_a_softmax(scores):
    s = scores.numpy().reshape(2, 3, -1) / 0.1
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    grid = np.array([cell_xy(r, c, 5, 7) for r in range(5) for c in range(7)])  # (35, 2)
    np.testing.assert_allclose(soft_argmax_2d(scores, 0.1).numpy(), p @ grid, rtol=1e-10)


@pytest.mark.parametrize('window', [1, 3, 5, 15])
def test_window_soft_argmax_2d_matches_the_direct_definition(scores, window):
    np.testing.assert_allclose(window_soft_argmax_2d(scores, window, 0.05).numpy(),
                               direct_window_soft_argmax(scores.numpy(), window, 0.05),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize('peak', [(0, 0), (0, 6), (4, 0), (4, 6), (0, 3), (2, 6)])
def test_window_is_clipped_at_borders_and_corners(peak):
    scores = torch.rand(1, 1, 5, 7, generator=torch.Generator().manual_seed(1),
                        dtype=torch.float64) * 0.5
    scores[0, 0, peak[0], peak[1]] = 1.0
    mask = window_mask_2d(scores, 3)[0, 0]
    rows = range(max(peak[0] - 1, 0), min(peak[0] + 2, 5))
    cols = range(max(peak[1] - 1, 0), min(peak[1] + 2, 7))
    assert mask.sum() == len(rows) * len(cols)
    assert all(mask[r, c] for r in rows for c in cols)
    np.testing.assert_allclose(window_soft_argmax_2d(scores, 3, 0.3).numpy(),
                               direct_window_soft_argmax(scores.numpy(), 3, 0.3), rtol=1e-10)


def test_a_distant_second_peak_pulls_soft_argmax_but_not_the_window():
    scores = torch.full((1, 1, 1, 21), -1.0)
    scores[..., 0], scores[..., 20] = 1.0, 0.99
    assert soft_argmax_2d(scores, 0.02)[0, 0, 0] > -0.5  # dragged towards the middle
    assert window_soft_argmax_2d(scores, 5, 0.02)[0, 0, 0] == pytest.approx(-1.0, abs=1e-6)


def test_window_softmax_gives_no_gradient_outside_the_box(scores):
    scores.requires_grad_()
    kps = window_soft_argmax_2d(scores, 3, 0.5)
    (grad,) = torch.autograd.grad(kps.sum(), scores)
    outside = ~window_mask_2d(scores, 3)
    assert grad[outside].abs().max() == 0
    assert grad[~outside].abs().sum() > 0
    probs = window_softmax_2d(scores, 3, 0.5)
    torch.testing.assert_close(probs.sum((-2, -1)), torch.ones(2, 3, dtype=torch.float64))


def test_dtype_and_leading_dimensions_follow_the_input():
    scores = torch.rand(4, 6, dtype=torch.float64)
    for fn in (argmax_2d, lambda s: soft_argmax_2d(s, 0.1), lambda s: window_soft_argmax_2d(s, 3)):
        out = fn(scores)
        assert out.shape == (2,) and out.dtype == torch.float64


@pytest.mark.parametrize('window', [0, 2, -3, 2.5, True])
def test_bad_windows_are_refused(window):
    with pytest.raises(ValueError, match='odd'):
        window_soft_argmax_2d(torch.zeros(1, 1, 3, 3), window)


def test_bad_temperature_and_shape_are_refused():
    with pytest.raises(ValueError, match='temperature'):
        soft_argmax_2d(torch.zeros(1, 1, 3, 3), 0.0)
    with pytest.raises(ValueError, match=r'\(\.\.\., H, W\)'):
        argmax_2d(torch.zeros(3))
