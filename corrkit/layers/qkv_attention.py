"""The projections shared by attentions that mix heads of queries, keys and values."""
from __future__ import annotations

from einops import rearrange
from torch import Tensor, nn

from .base import Attention
from .rotary import Rotary4D


class QKVAttention(Attention):
    """Base of attentions over ``(B, heads, T, D_h)`` queries, keys and values.

    Holds the joint ``qkv`` projection, the optional rotary embedding and the output
    projection; subclasses implement :meth:`attend`. Its pairwise map is
    ``softmax(Q K^T / sqrt(D_h))`` (:meth:`pairwise_queries_keys`), which a subclass
    that attends to something else than the other matches overrides.

    Args:
        embed_dims: Token size.
        num_heads: Number of heads.
        head_dims: Size of each head.
        rope: Rotary embedding applied to queries and keys, or ``None``.
    """

    def __init__(self, embed_dims: int, num_heads: int = 8, head_dims: int = 4,
                 rope: Rotary4D | None = None):
        super().__init__()
        inner = num_heads * head_dims
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.head_dims = head_dims
        self.qkv = nn.Linear(embed_dims, 3 * inner)
        self.proj = nn.Linear(inner, embed_dims)
        self.rope = rope

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """Mix ``(B, heads, T, D_h)`` values; returns the same shape."""
        raise NotImplementedError

    def project(self, x: Tensor, grid: tuple[int, int, int, int]) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys (rotated when ``rope`` is set) and values, ``(B, heads, T, D_h)``."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if self.rope is not None:
            q, k = self.rope(q, grid), self.rope(k, grid)
        return tuple(rearrange(z, 'b t (h d) -> b h t d', h=self.num_heads) for z in (q, k, v))

    def pairwise_queries_keys(self, x: Tensor, grid: tuple[int, int, int, int],
                              scores: str = 'paper') -> tuple[Tensor, Tensor] | None:
        """``(Q / sqrt(D_h), K)``, ``(B, heads, T, D_h)`` each: softmax attention's map.

        ``scores`` does not apply (the map is the layer's own); see
        :meth:`Attention.pairwise_queries_keys`.
        """
        q, k, _ = self.project(x, grid)
        return q * self.head_dims ** -0.5, k

    def forward(self, x: Tensor, grid: tuple[int, int, int, int]) -> Tensor:
        """Project, rotate, split heads, :meth:`attend`, merge heads and project back."""
        return self.proj(rearrange(self.attend(*self.project(x, grid)), 'b h t d -> b t (h d)'))
