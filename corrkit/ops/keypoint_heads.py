"""From per-keypoint similarity maps to target keypoints: argmax, soft-argmax, window soft-argmax.

A keypoint matcher scores every source keypoint against every target cell,
``(B, K, Ht, Wt)``. These functions read one position per map, in the
project's convention: normalised ``(x, y)`` in ``[-1, 1]`` with
``align_corners=True`` (-1 and +1 are the centres of the first and last cell).
"""
from __future__ import annotations

import torch
from torch import Tensor

from .coords import normalized_grid


def _check_maps(scores: Tensor, name: str) -> None:
    if scores.dim() < 2 or scores.shape[-1] < 1 or scores.shape[-2] < 1:
        raise ValueError(f'{name} takes score maps (..., H, W) with H, W >= 1, got shape '
                         f'{tuple(scores.shape)}')


def argmax_2d(scores: Tensor) -> Tensor:
    """The normalised ``(x, y)`` of each map's highest score (nearest neighbour).

    Ties go to the first cell in row-major order. Not differentiable: the
    result has no gradient with respect to ``scores``.

    Args:
        scores: Score maps, e.g. each source keypoint's similarity to every
            target cell.

    Returns:
        The centre of each map's best cell, in normalised coordinates, in the
        dtype and on the device of ``scores``.

    Raises:
        ValueError: If ``scores`` is not at least 2D.

    Shape:
        - scores: ``(B, K, H, W)`` (any leading dimensions)
        - output: ``(B, K, 2)``

    Examples:
        >>> scores = torch.zeros(1, 1, 3, 5)
        >>> scores[0, 0, 2, 1] = 1.0  # row 2, column 1
        >>> argmax_2d(scores)
        tensor([[[-0.5000,  1.0000]]])
    """
    _check_maps(scores, 'argmax_2d')
    h, w = scores.shape[-2:]
    index = scores.detach().flatten(-2).argmax(dim=-1)
    grid = normalized_grid(h, w, device=scores.device, dtype=scores.dtype).flatten(1)
    return grid[:, index].movedim(0, -1)


def spatial_softmax_2d(scores: Tensor, temperature: float = 1.0) -> Tensor:
    """Softmax of each map over its ``H · W`` cells.

    Args:
        scores: Score maps.
        temperature: Scores are divided by it; cosine scores in ``[-1, 1]`` want
            a small one (0.02 makes a difference of 0.1 a factor of ``e⁵``).

    Returns:
        Probabilities that sum to one over the last two dimensions.

    Raises:
        ValueError: If ``scores`` is not at least 2D or ``temperature <= 0``.

    Shape:
        - scores: ``(B, K, H, W)`` (any leading dimensions)
        - output: ``(B, K, H, W)``

    Examples:
        >>> spatial_softmax_2d(torch.zeros(1, 1, 2, 2))
        tensor([[[[0.2500, 0.2500],
                  [0.2500, 0.2500]]]])
    """
    _check_maps(scores, 'spatial_softmax_2d')
    _check_temperature(temperature, 'spatial_softmax_2d')
    return torch.softmax(scores.flatten(-2) / temperature, dim=-1).view_as(scores)


def expected_position_2d(probs: Tensor) -> Tensor:
    """The expected normalised ``(x, y)`` of each map under ``probs``.

    Args:
        probs: Probabilities over each map's cells (summing to one).

    Returns:
        ``sum over cells of probs × cell centre``.

    Shape:
        - probs: ``(B, K, H, W)`` (any leading dimensions)
        - output: ``(B, K, 2)``

    Examples:
        >>> probs = torch.tensor([[[[0.5, 0.0, 0.5]]]])
        >>> expected_position_2d(probs)
        tensor([[[0., 0.]]])
    """
    h, w = probs.shape[-2:]
    grid = normalized_grid(h, w, device=probs.device, dtype=probs.dtype)
    return torch.einsum('...ij,cij->...c', probs, grid)


def window_mask_2d(scores: Tensor, window: int) -> Tensor:
    """The cells within ``window // 2`` cells (Chebyshev) of each map's argmax.

    A ``window`` × ``window`` box centred on the best cell, clipped at the
    borders: next to a border the box has fewer cells, it is not shifted
    inwards.

    Args:
        scores: Score maps.
        window: Side of the box in cells; odd, at least 1.

    Returns:
        A boolean mask, true inside each map's box.

    Raises:
        ValueError: If ``scores`` is not at least 2D or ``window`` is not a
            positive odd integer.

    Shape:
        - scores: ``(B, K, H, W)`` (any leading dimensions)
        - output: ``(B, K, H, W)`` bool

    Examples:
        >>> scores = torch.zeros(1, 1, 4, 4)
        >>> scores[0, 0, 0, 3] = 1.0  # a corner: the 3 x 3 box keeps 2 x 2 cells
        >>> window_mask_2d(scores, window=3)[0, 0].int()
        tensor([[0, 0, 1, 1],
                [0, 0, 1, 1],
                [0, 0, 0, 0],
                [0, 0, 0, 0]], dtype=torch.int32)
    """
    _check_maps(scores, 'window_mask_2d')
    if isinstance(window, bool) or int(window) != window or window < 1 or window % 2 == 0:
        raise ValueError(f'window must be a positive odd number of cells (a box centred on the '
                         f'argmax), got {window!r}')
    h, w = scores.shape[-2:]
    index = scores.detach().flatten(-2).argmax(dim=-1)[..., None, None]
    rows = torch.arange(h, device=scores.device)[:, None]
    cols = torch.arange(w, device=scores.device)[None, :]
    half = int(window) // 2
    return ((rows - index // w).abs() <= half) & ((cols - index % w).abs() <= half)


def soft_argmax_2d(scores: Tensor, temperature: float = 1.0) -> Tensor:
    """Soft-argmax: the expected position under a softmax over all cells of each map.

    Args:
        scores: Score maps.
        temperature: Softmax temperature (see :func:`spatial_softmax_2d`).

    Returns:
        The expected normalised ``(x, y)`` of each map; differentiable.

    Raises:
        ValueError: If ``scores`` is not at least 2D or ``temperature <= 0``.

    Shape:
        - scores: ``(B, K, H, W)`` (any leading dimensions)
        - output: ``(B, K, 2)``

    Examples:
        >>> scores = torch.full((1, 1, 3, 3), -1.0)
        >>> scores[0, 0, 0, 2] = 1.0
        >>> soft_argmax_2d(scores, temperature=0.02).round(decimals=4)
        tensor([[[ 1., -1.]]])
    """
    return expected_position_2d(spatial_softmax_2d(scores, temperature))


def window_softmax_2d(scores: Tensor, window: int, temperature: float = 1.0) -> Tensor:
    """Softmax of each map over the cells of :func:`window_mask_2d` only; zero elsewhere.

    Args:
        scores: Score maps.
        window: Side of the box around the argmax in cells; odd, at least 1.
        temperature: Softmax temperature (see :func:`spatial_softmax_2d`).

    Returns:
        Probabilities that sum to one over each map's box and are zero (with
        zero gradient) outside it.

    Raises:
        ValueError: On a bad ``scores`` shape, ``window`` or ``temperature``.

    Shape:
        - scores: ``(B, K, H, W)`` (any leading dimensions)
        - output: ``(B, K, H, W)``

    Examples:
        >>> window_softmax_2d(torch.tensor([[[[1.0, 1.0, 0.0, 1.0]]]]), window=3)
        tensor([[[[0.5000, 0.5000, 0.0000, 0.0000]]]])
    """
    mask = window_mask_2d(scores, window)
    _check_temperature(temperature, 'window_softmax_2d')
    # -inf outside the box: exp gives exactly 0 there, so far cells neither
    # weigh in nor receive a gradient (GeoAware-SC zeroes their scores instead,
    # which still leaves them exp(0) in the softmax)
    logits = (scores / temperature).masked_fill(~mask, float('-inf'))
    return torch.softmax(logits.flatten(-2), dim=-1).view_as(scores)


def window_soft_argmax_2d(scores: Tensor, window: int, temperature: float = 1.0) -> Tensor:
    """Window soft-argmax: soft-argmax restricted to a box around each map's argmax.

    The hard argmax picks the mode, so a distant second peak cannot pull the
    prediction towards it; the softmax inside a ``window`` × ``window`` box
    (clipped at the borders) refines it to sub-cell precision (GeoAware-SC,
    Zhang et al., CVPR 2024). ``window=1`` is :func:`argmax_2d`; a window that
    covers the whole map twice over is :func:`soft_argmax_2d`.

    Args:
        scores: Score maps.
        window: Side of the box in cells; odd, at least 1.
        temperature: Softmax temperature (see :func:`spatial_softmax_2d`).

    Returns:
        The expected normalised ``(x, y)`` inside each map's box;
        differentiable with respect to the scores inside the box.

    Raises:
        ValueError: On a bad ``scores`` shape, ``window`` or ``temperature``.

    Shape:
        - scores: ``(B, K, H, W)`` (any leading dimensions)
        - output: ``(B, K, 2)``

    Examples:
        >>> scores = torch.tensor([[[[0.0, 1.0, 1.0, 0.0, 0.0, 0.99]]]])
        >>> window_soft_argmax_2d(scores, window=3, temperature=0.02)  # ignores the far peak
        tensor([[[-0.4000,  0.0000]]])
    """
    return expected_position_2d(window_softmax_2d(scores, window, temperature))


def _check_temperature(temperature: float, name: str) -> None:
    if not temperature > 0:
        raise ValueError(f'{name} needs a temperature > 0, got {temperature!r}')
