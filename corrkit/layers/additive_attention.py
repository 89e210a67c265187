"""Additive (Fastformer-style) multi-head attention: linear in the number of tokens."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..registry import ATTENTIONS
from .base import PAIRWISE_SCORES, Attention
from .rotary import Rotary4D


@ATTENTIONS.register_module()
class AdditiveAttention(Attention):
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
        self.embed_dims = embed_dims
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
        return tuple(t.unflatten(-1, (self.num_heads, self.head_dims)) for t in (q, k, v))

    def query_weights(self, q: Tensor) -> Tensor:
        """``α = softmax_T(τ Q w_q)`` of Eq. 5, ``(B, heads, T)``."""
        return torch.softmax(head_scores(q.flatten(-2), self.query_weight) * self.scale, -1)

    def pairwise_queries_keys(self, x: Tensor, grid: tuple[int, int, int, int],
                              scores: str = 'paper') -> tuple[Tensor, Tensor]:
        """Queries weighted by ``α`` and keys: the map the supplementary (§D) reads off.

        Additive attention has no pairwise scores; ``softmax_k(Q̂ K^T)`` with
        ``Q̂_q = α_q Q_q`` stands in for them (``scores='paper'``). ``α`` sums to one
        over the ``T`` matches, so ``'relative'`` rescales it by ``T`` and applies
        ``1 / sqrt(D_h)`` (see :mod:`corrkit.analysis.nonlocality`).

        Args:
            x: The layer's input ``(B, T, embed_dims)``.
            grid: The grid ``x`` flattens.
            scores: ``'paper'`` or ``'relative'``.

        Returns:
            ``(Q̂, K)``, ``(B, heads, T, D_h)`` each.

        Raises:
            ValueError: On an unknown ``scores``.
        """
        if scores not in PAIRWISE_SCORES:
            raise ValueError(f'scores must be one of {PAIRWISE_SCORES}, got {scores!r}')
        q, k, _ = self.project(x, grid)
        alpha = self.query_weights(q).transpose(1, 2)[..., None]  # (B, T, heads, 1)
        if scores == 'relative':
            alpha = alpha * q.shape[1] * self.scale
        return (q * alpha).transpose(1, 2), k.transpose(1, 2)

    def forward(self, x: Tensor, grid: tuple[int, int, int, int]) -> Tensor:
        """Attend over all tokens of ``x``, which flatten the 4D ``grid``."""
        q, k, v = (t.flatten(-2) for t in self.project(x, grid))  # (B, T, heads * D_h)
        alpha = torch.softmax(head_scores(q, self.query_weight) * self.scale, -1)
        global_query = head_pool(alpha, q)
        key_logits = head_scores(k, global_query * self.key_weight)
        beta = torch.softmax(key_logits * self.scale, dim=-1)
        global_key = global_query * head_pool(beta, k)
        out = v * global_key.flatten(-2)[:, None]
        if self.query_residual:
            out = out + q
        return self.proj(out)


def head_scores(x: Tensor, weight: Tensor) -> Tensor:
    """Per head, the dot product of every token with that head's weight vector.

    One matrix product of the ``(B, T, heads · D)`` tokens, as they come out of
    the projection, with a block-diagonal ``(heads · D, heads)`` matrix: no copy of
    the tokens into a per-head layout.

    Args:
        x: Tokens ``(B, T, heads · D)``.
        weight: ``(heads, D)`` or per sample ``(B, heads, D)``.

    Returns:
        Scores ``(B, heads, T)``.
    """
    return (x @ head_matrix(weight)).transpose(-1, -2)


def head_matrix(weight: Tensor) -> Tensor:
    """The block-diagonal ``(..., heads · D, heads)`` matrix whose product with tokens
    ``(..., heads · D)`` gives each head's dot product with its row of ``weight``
    ``(..., heads, D)``."""
    heads = weight.shape[-2]
    eye = torch.eye(heads, dtype=weight.dtype, device=weight.device)
    return (weight[..., None] * eye[:, None, :]).flatten(-3, -2)


def head_pool(probs: Tensor, x: Tensor) -> Tensor:
    """Per head, the ``probs``-weighted sum of that head's slice of the tokens.

    Args:
        probs: ``(B, heads, T)``.
        x: Tokens ``(B, T, heads · D)``.

    Returns:
        ``(B, heads, D)``. One batched product gives every head's weights
        applied to every head's slice; the diagonal blocks are kept.
    """
    heads = probs.shape[1]
    pooled = (probs @ x).unflatten(-1, (heads, -1))  # (B, heads, heads, D)
    return pooled.diagonal(dim1=1, dim2=2).transpose(1, 2)
