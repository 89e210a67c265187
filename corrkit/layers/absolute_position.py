"""Learnable absolute 4D position embedding, factorised over the four match axes."""
from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn


class AbsolutePosition4D(nn.Module):
    """Adds ``E_ys[ys] + E_xs[xs] + E_yt[yt] + E_xt[xt]`` to every match token.

    One learnable table per axis (``max_size`` rows of ``embed_dims``) keeps the
    parameter count at ``4 · max_size · embed_dims`` instead of one row per match,
    and works for any grid up to ``max_size`` along each axis.

    Args:
        embed_dims: Token size.
        max_size: Largest grid extent along any axis.

    Shape:
        - x: ``(B, Hs * Ws * Ht * Wt, embed_dims)``
        - output: same

    Examples:
        >>> pos = AbsolutePosition4D(8, max_size=4)
        >>> pos(torch.zeros(1, 2 * 3 * 2 * 2, 8), (2, 3, 2, 2)).shape
        torch.Size([1, 24, 8])
    """

    def __init__(self, embed_dims: int, max_size: int = 32):
        super().__init__()
        self.max_size = max_size
        self.tables = nn.Parameter(torch.randn(4, max_size, embed_dims) * 0.02)

    def forward(self, x: Tensor, grid: tuple[int, int, int, int]) -> Tensor:
        """Add the embedding of each token's ``(ys, xs, yt, xt)`` to ``x``."""
        if max(grid) > self.max_size:
            raise ValueError(f'grid {tuple(grid)} exceeds max_size={self.max_size} of the '
                             f'absolute position embedding; raise max_size')
        hs, ws, ht, wt = grid
        t = self.tables
        pos = (t[0, :hs, None, None, None] + t[1, None, :ws, None, None]
               + t[2, None, None, :ht, None] + t[3, None, None, None, :wt])
        return x + rearrange(pos, 'hs ws ht wt c -> (hs ws ht wt) c')
