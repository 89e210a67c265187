"""Linformer attention: softmax attention over keys and values projected to fewer tokens."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..registry import ATTENTIONS
from .qkv_attention import QKVAttention
from .rotary import Rotary4D


@ATTENTIONS.register_module()
class LinformerAttention(QKVAttention):
    """Linformer (Wang et al., 2020): keys and values projected along the token axis.

    Learned ``(proj_dims, num_tokens)`` matrices ``E`` and ``F`` mix the ``T`` keys
    and values into ``k = proj_dims`` summaries, and every query attends to those:
    ``softmax(Q (E K)^T / sqrt(D_h)) (F V)``, linear in ``T``. The projections are
    shared by all heads (and, with ``share_kv``, ``F = E``). They are tied to the
    number of matches, so a model built for one grid refuses another.

    Linformer approximates softmax attention when the attention matrix is close to
    low rank and the projections summarise the tokens: with ``proj_dims =
    num_tokens`` and identity projections it equals :class:`SoftmaxAttention`
    exactly; with pooling projections over groups of near-equal tokens it stays
    within the tokens' spread (both tested). The projections start random
    (``N(0, 1/T)``, the scale of a ``T → k`` linear layer) and must be learned; in
    the TransforMatcher paper's Table 3 this attention failed to train.

    Args:
        embed_dims: Token size.
        num_heads: Number of heads.
        head_dims: Size of each head.
        rope: Rotary embedding applied to queries and keys, or ``None``.
        num_tokens: Matches ``T = Hs Ws Ht Wt`` the model runs on (15⁴ = 50625 for
            the flagship's 240×240 input).
        proj_dims: Projected length ``k``.
        share_kv: Use one projection for keys and values.

    Shape:
        - x: ``(B, num_tokens, embed_dims)``
        - output: ``(B, num_tokens, embed_dims)``

    Raises:
        ValueError: On a non-positive ``num_tokens`` or ``proj_dims``, or (in
            forward) an input whose number of tokens is not ``num_tokens``.

    Examples:
        >>> attn = LinformerAttention(16, num_heads=2, head_dims=4, num_tokens=16, proj_dims=4)
        >>> attn(torch.randn(1, 16, 16), (2, 2, 2, 2)).shape
        torch.Size([1, 16, 16])
    """

    def __init__(self, embed_dims: int, num_heads: int = 8, head_dims: int = 4,
                 rope: Rotary4D | None = None, num_tokens: int | None = None,
                 proj_dims: int = 256, share_kv: bool = True):
        super().__init__(embed_dims, num_heads, head_dims, rope)
        if num_tokens is None or int(num_tokens) < 1 or int(proj_dims) < 1:
            raise ValueError(
                f'LinformerAttention needs num_tokens (the number of matches Hs*Ws*Ht*Wt, '
                f'e.g. 50625 for a 15^4 grid) and proj_dims as positive integers, got '
                f'num_tokens={num_tokens!r}, proj_dims={proj_dims!r}')
        self.num_tokens = int(num_tokens)
        self.proj_dims = int(proj_dims)
        self.key_proj = nn.Parameter(torch.empty(self.proj_dims, self.num_tokens))
        self.value_proj = None if share_kv else nn.Parameter(torch.empty_like(self.key_proj))
        for weight in (self.key_proj, self.value_proj):
            if weight is not None:
                nn.init.normal_(weight, std=self.num_tokens ** -0.5)

    def pairwise_queries_keys(self, x: Tensor, grid: tuple[int, int, int, int],
                              scores: str = 'paper') -> None:
        """``None``: every match attends to ``proj_dims`` learned summaries, not to matches."""
        return None

    def forward(self, x: Tensor, grid: tuple[int, int, int, int]) -> Tensor:
        """Attend from every token of ``x`` (the flattened ``grid``) to ``proj_dims`` summaries."""
        if x.shape[1] != self.num_tokens:
            raise ValueError(
                f'LinformerAttention was built for num_tokens={self.num_tokens} matches but got '
                f'{x.shape[1]} (grid {tuple(grid)}); set the attention\'s num_tokens to '
                f'Hs*Ws*Ht*Wt of the correlation grid at the model\'s input size')
        return super().forward(x, grid)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """``softmax(q (E k)^T / sqrt(D_h)) (F v)`` per head."""
        value_proj = self.key_proj if self.value_proj is None else self.value_proj
        k = torch.einsum('nt,bhtd->bhnd', self.key_proj.to(k.dtype), k)
        v = torch.einsum('nt,bhtd->bhnd', value_proj.to(v.dtype), v)
        return F.scaled_dot_product_attention(q, k, v)
