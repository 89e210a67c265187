"""Resampling of 4D correlation tensors."""
from __future__ import annotations

import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


def interpolate_4d(corr: Tensor, size: tuple[int, int, int, int]) -> Tensor:
    """Bilinear 4D resampling (``align_corners=True``): source dims, then target dims.

    The 4D bilinear kernel is separable, so the resampling is two 2D bilinear
    passes: one over ``(Hs, Ws)`` for every target cell, one over ``(Ht, Wt)``
    for every (resampled) source cell.

    Args:
        corr: Correlation tensor.
        size: Output ``(Hs', Ws', Ht', Wt')``.

    Returns:
        The resampled correlation.

    Shape:
        - corr: ``(B, L, Hs, Ws, Ht, Wt)``
        - output: ``(B, L, Hs', Ws', Ht', Wt')``

    Raises:
        ValueError: If ``corr`` is not 6-dimensional or ``size`` has not 4 entries.

    Examples:
        >>> corr = torch.rand(1, 2, 3, 3, 4, 4)
        >>> interpolate_4d(corr, (5, 5, 7, 7)).shape
        torch.Size([1, 2, 5, 5, 7, 7])
    """
    if corr.dim() != 6:
        raise ValueError(f'interpolate_4d expects (B, L, Hs, Ws, Ht, Wt), got {tuple(corr.shape)}')
    if len(size) != 4:
        raise ValueError(f'size must be (Hs, Ws, Ht, Wt), got {size}')
    hs2, ws2, ht2, wt2 = (int(s) for s in size)
    b, l, hs, ws, ht, wt = corr.shape
    if (hs, ws) != (hs2, ws2):
        x = rearrange(corr, 'b l hs ws ht wt -> (b l) (ht wt) hs ws')
        x = F.interpolate(x, size=(hs2, ws2), mode='bilinear', align_corners=True)
        corr = rearrange(x, '(b l) (ht wt) hs ws -> b l hs ws ht wt', b=b, ht=ht)
    if (ht, wt) != (ht2, wt2):
        x = rearrange(corr, 'b l hs ws ht wt -> (b l) (hs ws) ht wt')
        x = F.interpolate(x, size=(ht2, wt2), mode='bilinear', align_corners=True)
        corr = rearrange(x, '(b l) (hs ws) ht wt -> b l hs ws ht wt', b=b, hs=hs2)
    return corr
