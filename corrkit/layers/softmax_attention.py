"""Vanilla multi-head softmax attention over match tokens, with a memory guard."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import AttentionMemoryError
from ..registry import ATTENTIONS
from .qkv_attention import QKVAttention
from .rotary import Rotary4D



@ATTENTIONS.register_module()
class SoftmaxAttention(QKVAttention):
    """Vanilla attention ``softmax(Q K^T / sqrt(D_h)) V`` per head (the paper's Table 3 row).

    Every match attends to every other match, so the scores take ``T × T`` entries
    per head: quadratic in the number of matches (``T = Hs Ws Ht Wt``; at a 15⁴
    grid that is 2.6·10⁹ scores per head). Before computing them the layer checks
    what the scores would occupy against ``max_score_bytes`` and refuses with
    :class:`AttentionMemoryError` instead of exhausting memory.

    Args:
        embed_dims: Token size.
        num_heads: Number of heads.
        head_dims: Size of each head.
        rope: Rotary embedding applied to queries and keys, or ``None``.
        max_score_bytes: Largest score tensor (``B × heads × T × T`` elements of the
            input's dtype) the layer may create; default 2 GiB.

    Shape:
        - x: ``(B, T, embed_dims)``
        - output: ``(B, T, embed_dims)``

    Examples:
        >>> attn = SoftmaxAttention(16, num_heads=2, head_dims=4)
        >>> attn(torch.randn(1, 3 * 3 * 2 * 2, 16), (3, 3, 2, 2)).shape
        torch.Size([1, 36, 16])
    """

    def __init__(self, embed_dims: int, num_heads: int = 8, head_dims: int = 4,
                 rope: Rotary4D | None = None, max_score_bytes: int = 2 * 1024 ** 3):
        super().__init__(embed_dims, num_heads, head_dims, rope)
        self.max_score_bytes = int(max_score_bytes)

    def score_bytes(self, batch: int, tokens: int, element_size: int) -> int:
        """Bytes of the ``(B, heads, T, T)`` score tensor."""
        return batch * self.num_heads * tokens * tokens * element_size

    def forward(self, x: Tensor, grid: tuple[int, int, int, int]) -> Tensor:
        """Attend from every token to every token of ``x`` (the flattened ``grid``)."""
        b, t, _ = x.shape
        need = self.score_bytes(b, t, x.element_size())
        if need > self.max_score_bytes:
            raise AttentionMemoryError(
                f'SoftmaxAttention over {t} matches (grid {tuple(grid)}, batch {b}, '
                f'{self.num_heads} heads) needs {need / 1024 ** 3:.1f} GiB for its T x T '
                f'scores, above max_score_bytes={self.max_score_bytes} '
                f'({self.max_score_bytes / 1024 ** 3:.1f} GiB). Use a linear attention '
                f'(AdditiveAttention), a smaller grid, or raise max_score_bytes.')
        return super().forward(x, grid)

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """``softmax(q k^T / sqrt(D_h)) v`` per head."""
        return F.scaled_dot_product_attention(q, k, v)
