"""4D rotary position embedding (RoPE) over match tokens.

A match token sits at a 4D position ``(ys, xs, yt, xt)``. Features are read as
``D / 2`` rotation pairs ``(x[2g], x[2g + 1])``; pair ``g`` encodes axis
``g % 4`` at frequency index ``g // 4``, so consecutive pairs cycle through the
four axes and every axis gets a geometric ladder of frequencies. Rotating
queries and keys by their positions makes ``<rope(q, m), rope(k, n)>`` a
function of the per-axis offsets ``m - n`` only (Su et al., RoFormer).

When the features are later split into heads of ``head_dims`` channels, the
axes are spread across heads and pairs; with 8 heads of 4 channels, even heads
see source positions and odd heads target positions, each at its own frequency.
"""
from __future__ import annotations

import torch
from torch import Tensor

NUM_AXES = 4


def grid_positions_4d(hs: int, ws: int, ht: int, wt: int, *, device: torch.device | str | None = None,
                      dtype: torch.dtype | None = None) -> Tensor:
    """Integer positions ``(ys, xs, yt, xt)`` of every match, in ``'hs ws ht wt'`` order.

    Args:
        hs: Source grid rows.
        ws: Source grid columns.
        ht: Target grid rows.
        wt: Target grid columns.
        device: Device of the result.
        dtype: Floating dtype of the result.

    Returns:
        One row per match token, as the tokens are flattened by
        ``'b l hs ws ht wt -> b (hs ws ht wt) l'``.

    Shape:
        - output: ``(hs * ws * ht * wt, 4)``

    Examples:
        >>> grid_positions_4d(1, 2, 1, 2).tolist()
        [[0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0]]
    """
    axes = [torch.arange(n, device=device, dtype=dtype or torch.get_default_dtype())
            for n in (hs, ws, ht, wt)]
    return torch.stack(torch.meshgrid(*axes, indexing='ij'), dim=-1).reshape(-1, NUM_AXES)


def rope_4d_angles(positions: Tensor, dims: int, base: float = 100.0) -> Tensor:
    """Rotation angle of every pair of every token.

    Args:
        positions: 4D positions of the tokens.
        dims: Feature size ``D`` to rotate (even, at least 8 so that all four
            axes get a pair).
        base: Frequency ladder base: the ``k``-th of ``n`` frequencies of an axis
            is ``base ** (-k / n)`` radians per grid cell.

    Returns:
        Angles in radians.

    Shape:
        - positions: ``(T, 4)``
        - output: ``(T, D / 2)``

    Raises:
        ValueError: If ``dims`` is odd or too small to encode four axes.
    """
    if dims % 2 or dims < 2 * NUM_AXES:
        raise ValueError(f'4D rotary embedding needs an even feature size of at least '
                         f'{2 * NUM_AXES} (one rotation pair per axis), got {dims}')
    pair = torch.arange(dims // 2, device=positions.device)
    axis = pair % NUM_AXES
    level = torch.div(pair, NUM_AXES, rounding_mode='floor')
    levels_per_axis = torch.div(dims // 2 - axis + NUM_AXES - 1, NUM_AXES, rounding_mode='floor')
    freq = base ** (-level.to(positions.dtype) / levels_per_axis.to(positions.dtype))
    return positions[:, axis] * freq


def apply_rope_4d(x: Tensor, positions: Tensor, base: float = 100.0) -> Tensor:
    """Rotate features by their 4D positions.

    Args:
        x: Token features; the last dimension ``D`` is read as ``D / 2`` pairs.
        positions: 4D position ``(ys, xs, yt, xt)`` of each token.
        base: Frequency ladder base, see :func:`rope_4d_angles`.

    Returns:
        The rotated features; norms of every pair are unchanged.

    Shape:
        - x: ``(..., T, D)``
        - positions: ``(T, 4)``
        - output: ``(..., T, D)``

    Examples:
        >>> x = torch.randn(2, 6, 8)
        >>> pos = grid_positions_4d(1, 2, 1, 3)
        >>> y = apply_rope_4d(x, pos)
        >>> bool(torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-5))
        True
    """
    angles = rope_4d_angles(positions.to(x.dtype), x.shape[-1], base)
    return rotate_pairs(x, angles.cos(), angles.sin())


def rotate_pairs(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate interleaved pairs ``(x[2g], x[2g + 1])`` by precomputed cosines and sines.

    Args:
        x: Features.
        cos: Cosine of each pair's angle.
        sin: Sine of each pair's angle.

    Returns:
        The rotated features.

    Shape:
        - x: ``(..., T, D)``
        - cos: ``(T, D / 2)``
        - sin: ``(T, D / 2)``
        - output: ``(..., T, D)``
    """
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)
