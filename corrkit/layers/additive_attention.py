"""Additive (Fastformer-style) multi-head attention: linear in the number of tokens."""
from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor, nn

from ..registry import ATTENTIONS
from .rotary import Rotary4D


@ATTENTIONS.register_module()
class AdditiveAttention(nn.Module):
    """Match-to-match additive attention (TransforMatcher Eq. 5–7).

    Per head ``h``, with ``τ = head_dims ** -0.5``::

        α = softmax_T(τ Q w_q)          q̄ = Σ_j α_j Q_j          H_i = K_i ⊙ q̄      (5)
        β = softmax_T(τ H w_k)          k̄ = Σ_j β_j H_j          out_i = V_i ⊙ k̄    (6)

    then, as §4.2 and Fastformer do, the query is added back (``out_i + Q_i``, the
    "residual connection with Q"; ``query_residual=False`` drops it), and the
    heads are concatenated and projected (7). Because ``q̄`` is the same
    for every token, ``H w_k = K (q̄ ⊙ w_k)`` and ``k̄ = q̄ ⊙ Σ_j β_j K_j``: ``H`` is
    never materialised. Queries and keys are rotated by ``rope`` when given.

    Args:
        embed_dims: Token size.
        num_heads: Number of heads ``N_h``.
        head_dims: Size ``D_h`` of each head.
        rope: Rotary embedding applied to queries and keys, or ``None``.
        query_residual: Add the (rotated) queries to the attention output of each head.

    Shape:
        - x: ``(B, T, embed_dims)``
        - output: ``(B, T, embed_dims)``
    """

    def __init__(self, embed_dims: int, num_heads: int = 8, head_dims: int = 4,
                 rope: Rotary4D | None = None, query_residual: bool = True):
        super().__init__()
        inner = num_heads * head_dims
        self.num_heads = num_heads
        self.head_dims = head_dims
        self.scale = head_dims ** -0.5
        self.qkv = nn.Linear(embed_dims, 3 * inner)
        self.query_weight = nn.Parameter(torch.empty(num_heads, head_dims))
        self.key_weight = nn.Parameter(torch.empty(num_heads, head_dims))
        self.proj = nn.Linear(inner, embed_dims)
        self.rope = rope
        self.query_residual = query_residual
        nn.init.trunc_normal_(self.query_weight, std=0.02)
        nn.init.trunc_normal_(self.key_weight, std=0.02)

    def project(self, x: Tensor, grid: tuple[int, int, int, int]) -> tuple[Tensor, Tensor, Tensor]:
        """Queries, keys (rotated when ``rope`` is set) and values, ``(B, T, heads, D_h)``."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        if self.rope is not None:
            q, k = self.rope(q, grid), self.rope(k, grid)
        return tuple(rearrange(t, 'b t (h d) -> b t h d', h=self.num_heads) for t in (q, k, v))

    def query_weights(self, q: Tensor) -> Tensor:
        """``α = softmax_T(τ Q w_q)`` of Eq. 5, ``(B, T, heads)``."""
        return torch.softmax(torch.einsum('bthd,hd->bth', q, self.query_weight) * self.scale, 1)

    def forward(self, x: Tensor, grid: tuple[int, int, int, int]) -> Tensor:
        """Attend over all tokens of ``x``, which flatten the 4D ``grid``."""
        q, k, v = self.project(x, grid)
        alpha = self.query_weights(q)
        global_query = torch.einsum('bth,bthd->bhd', alpha, q)
        key_logits = torch.einsum('bthd,bhd->bth', k, global_query * self.key_weight)
        beta = torch.softmax(key_logits * self.scale, dim=1)
        global_key = global_query * torch.einsum('bth,bthd->bhd', beta, k)
        out = v * global_key[:, None]
        if self.query_residual:
            out = out + q
        return self.proj(rearrange(out, 'b t h d -> b t (h d)'))
