"""Pre-LN transformer block over match tokens."""
from __future__ import annotations

from torch import Tensor, nn

from .base import Attention
from .mlp import Mlp


class PreNormBlock(nn.Module):
    """``x + attn(LN(x))`` then ``x + mlp(LN(x))``.

    Args:
        embed_dims: Token size.
        attention: The token mixer, called as ``attention(x, grid)``.
        mlp_ratio: Hidden size of the MLP relative to ``embed_dims``.

    Shape:
        - x: ``(B, T, embed_dims)``
        - output: ``(B, T, embed_dims)``
    """

    def __init__(self, embed_dims: int, attention: Attention, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(embed_dims)
        self.attn = attention
        self.norm2 = nn.LayerNorm(embed_dims)
        self.mlp = Mlp(embed_dims, int(round(embed_dims * mlp_ratio)))

    def forward(self, x: Tensor, grid: tuple[int, int, int, int]) -> Tensor:
        x = x + self.attn(self.norm1(x), grid)
        return x + self.mlp(self.norm2(x))
