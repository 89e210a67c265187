import pytest
import torch

from corrkit.ops import kernel_soft_argmax, normalized_grid, soft_argmax


def one_hot_corr(hs=3, ws=4, ht=5, wt=6, seed=0):
    """Each source cell has exactly one matching target cell (score 1, all else 0)."""
    gen = torch.Generator().manual_seed(seed)
    targets = torch.randint(0, ht * wt, (hs, ws), generator=gen)
    corr = torch.zeros(1, hs, ws, ht * wt)
    corr[0].scatter_(-1, targets[..., None], 1.0)
    return corr.view(1, hs, ws, ht, wt), targets


@pytest.mark.parametrize('fn', [
    lambda c: soft_argmax(c, temperature=0.01),
    lambda c: kernel_soft_argmax(c, sigma=2.0, temperature=0.01),
])
def test_one_hot_correlation_gives_that_cell(fn):
    corr, targets = one_hot_corr()
    pred = fn(corr)
    assert pred.shape == (1, 2, 3, 4)
    grid = normalized_grid(5, 6).flatten(1)  # (2, ht * wt)
    expected = grid[:, targets].unsqueeze(0)
    torch.testing.assert_close(pred, expected, atol=1e-4, rtol=0)


def test_kernel_suppresses_a_distant_second_peak():
    corr = torch.zeros(1, 1, 1, 1, 21)
    corr[..., 0] = 1.0   # best match at x = -1
    corr[..., 20] = 0.9  # a distant secondary peak at x = +1
    plain = soft_argmax(corr, temperature=0.1)[0, 0, 0, 0]
    kernel = kernel_soft_argmax(corr, sigma=2.0, temperature=0.1)[0, 0, 0, 0]
    assert kernel < plain - 0.3
    assert kernel == pytest.approx(-1.0, abs=0.05)


def test_uniform_scores_give_the_grid_centre():
    pred = soft_argmax(torch.zeros(2, 2, 2, 5, 5))
    torch.testing.assert_close(pred, torch.zeros(2, 2, 2, 2), atol=1e-6, rtol=0)


def test_kernel_follows_the_argmax_for_negative_scores():
    corr = torch.full((1, 1, 1, 1, 21), -5.0)
    corr[..., 20] = -1.0  # the best match, at x = +1, in all-negative scores
    pred = kernel_soft_argmax(corr, sigma=2.0, temperature=0.5)[0, 0, 0, 0]
    assert pred == pytest.approx(1.0, abs=0.05)
    shifted = kernel_soft_argmax(corr + 7.0, sigma=2.0, temperature=0.5)[0, 0, 0, 0]
    assert shifted == pytest.approx(pred.item(), abs=1e-6)  # invariant to a constant
