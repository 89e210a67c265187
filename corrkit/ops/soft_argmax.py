"""From a 4D correlation to a dense flow: soft-argmax and kernel soft-argmax."""
from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from .coords import normalized_grid


def expected_target(probs: Tensor) -> Tensor:
    """Expected normalised target ``(x, y)`` of each source cell under ``probs``.

    Args:
        probs: Match probabilities over target cells.

    Returns:
        The expectation over the normalised target grid.

    Shape:
        - probs: ``(B, Hs, Ws, Ht, Wt)``
        - output: ``(B, 2, Hs, Ws)``
    """
    ht, wt = probs.shape[-2:]
    grid = normalized_grid(ht, wt, device=probs.device, dtype=probs.dtype)
    return torch.einsum('bhwij,cij->bchw', probs, grid)


def soft_argmax_probabilities(corr: Tensor, temperature: float = 1.0) -> Tensor:
    """Softmax over target cells, per source cell.

    Args:
        corr: Correlation scores.
        temperature: Softmax temperature; scores are divided by it.

    Returns:
        Match probabilities that sum to one over ``(Ht, Wt)``.

    Shape:
        - corr: ``(B, Hs, Ws, Ht, Wt)``
        - output: ``(B, Hs, Ws, Ht, Wt)``
    """
    flat = rearrange(corr, 'b hs ws ht wt -> b hs ws (ht wt)')
    probs = torch.softmax(flat / temperature, dim=-1)
    return probs.view_as(corr)


def gaussian_around_argmax(corr: Tensor, sigma: float) -> Tensor:
    """A 2D Gaussian over target cells centred on each source cell's best match.

    Args:
        corr: Correlation scores.
        sigma: Standard deviation in target grid cells.

    Returns:
        ``exp(-d² / (2 sigma²))`` with ``d`` the distance (in cells) to the
        argmax target cell of the same source cell. No gradient flows through
        the argmax.

    Shape:
        - corr: ``(B, Hs, Ws, Ht, Wt)``
        - output: ``(B, Hs, Ws, Ht, Wt)``
    """
    ht, wt = corr.shape[-2:]
    index = rearrange(corr, 'b hs ws ht wt -> b hs ws (ht wt)').argmax(dim=-1)
    peak_y = (index // wt).to(corr.dtype)[..., None, None]
    peak_x = (index % wt).to(corr.dtype)[..., None, None]
    ys = torch.arange(ht, device=corr.device, dtype=corr.dtype)[:, None]
    xs = torch.arange(wt, device=corr.device, dtype=corr.dtype)[None, :]
    sq_dist = (ys - peak_y) ** 2 + (xs - peak_x) ** 2
    return torch.exp(-sq_dist / (2 * sigma ** 2))


def kernel_soft_argmax(corr: Tensor, sigma: float, temperature: float = 1.0) -> Tensor:
    """Kernel soft-argmax: the expected target of every source cell.

    The scores of each source cell are multiplied by a Gaussian (``sigma`` in
    target grid cells) centred on its hard argmax, which suppresses distant
    secondary peaks; a softmax with ``temperature`` over target cells gives
    match probabilities, and their expectation over the normalised target grid
    is the prediction (Lee et al., 2019, as used by TransforMatcher Eq. 10).

    Before the product, the scores of each source cell are shifted so that
    their minimum is 0. The plain product ``G * C`` only suppresses distant
    cells when scores are non-negative: with negative scores (a learned
    refiner's output can be all negative) it would pull distant cells *up*
    towards 0 and push the prediction away from the argmax. With the shift the
    result does not change when a constant is added to the scores, like a
    softmax, and equals Eq. 10 exactly for scores whose minimum is 0 (ReLU'd
    cosine correlations).

    Args:
        corr: Correlation scores.
        sigma: Gaussian standard deviation in target grid cells.
        temperature: Softmax temperature.

    Returns:
        Per source cell, the expected normalised target ``(x, y)``.

    Shape:
        - corr: ``(B, Hs, Ws, Ht, Wt)``
        - output: ``(B, 2, Hs, Ws)``

    Examples:
        >>> corr = torch.zeros(1, 2, 2, 5, 5)
        >>> corr[0, 0, 0, 4, 4] = 50.0  # source cell (0, 0) matches the last target cell
        >>> kernel_soft_argmax(corr, sigma=2.0)[0, :, 0, 0]
        tensor([1., 1.])
    """
    return expected_target(kernel_soft_argmax_probabilities(corr, sigma, temperature))


def kernel_soft_argmax_probabilities(corr: Tensor, sigma: float,
                                     temperature: float = 1.0) -> Tensor:
    """The match probabilities behind :func:`kernel_soft_argmax`.

    Args:
        corr: Correlation scores.
        sigma: Gaussian standard deviation in target grid cells.
        temperature: Softmax temperature.

    Returns:
        Probabilities summing to one over the target cells of each source cell.

    Shape:
        - corr: ``(B, Hs, Ws, Ht, Wt)``
        - output: ``(B, Hs, Ws, Ht, Wt)``
    """
    shifted = corr - corr.amin(dim=(-2, -1), keepdim=True)
    return soft_argmax_probabilities(gaussian_around_argmax(corr, sigma) * shifted, temperature)


def soft_argmax(corr: Tensor, temperature: float = 1.0) -> Tensor:
    """Plain soft-argmax: the expectation under a softmax over target cells.

    Args:
        corr: Correlation scores.
        temperature: Softmax temperature.

    Returns:
        Per source cell, the expected normalised target ``(x, y)``.

    Shape:
        - corr: ``(B, Hs, Ws, Ht, Wt)``
        - output: ``(B, 2, Hs, Ws)``
    """
    return expected_target(soft_argmax_probabilities(corr, temperature))
