"""Performer attention (FAVOR+): softmax attention approximated by positive random features."""
from __future__ import annotations

import torch
from torch import Tensor

from ..registry import ATTENTIONS
from .qkv_attention import QKVAttention
from .rotary import Rotary4D


def orthogonal_gaussian(num_features: int, dims: int, generator: torch.Generator) -> Tensor:
    """``(num_features, dims)`` rows drawn from N(0, I), orthogonal within blocks of ``dims``."""
    blocks = []
    for start in range(0, num_features, dims):
        q, r = torch.linalg.qr(torch.randn(dims, dims, generator=generator))
        q = q * torch.sign(torch.diagonal(r))  # Haar-uniform rotation, not QR's sign choice
        norms = torch.randn(dims, dims, generator=generator).norm(dim=1)
        blocks.append((q.T * norms[:, None])[:num_features - start])
    return torch.cat(blocks)


def positive_features(x: Tensor, projection: Tensor, is_query: bool) -> Tensor:
    """FAVOR+ features ``exp(w·x - |x|²/2)``; a per-row or global maximum is subtracted
    first (it cancels in the attention's normalisation)."""
    proj = torch.einsum('bhtd,md->bhtm', x, projection.to(x.dtype))
    logits = proj - x.square().sum(-1, keepdim=True) / 2
    shift = (logits.amax(dim=-1, keepdim=True) if is_query
             else logits.amax(dim=(-2, -1), keepdim=True))
    return torch.exp(logits - shift.detach())


@ATTENTIONS.register_module()
class PerformerAttention(QKVAttention):
    """Performer's FAVOR+ attention (Choromanski et al., ICLR 2021), linear in the tokens.

    ``softmax(Q K^T / sqrt(D_h))`` is approximated by ``φ(Q) φ(K)^T`` with
    ``num_features`` positive orthogonal random features, so the output
    ``φ(Q) (φ(K)^T V) / (φ(Q) φ(K)^T 1)`` never forms the ``T × T`` scores. More
    features give a closer approximation of :class:`SoftmaxAttention` (tested).
    The features are drawn once from ``seed`` and stored as a buffer.

    Args:
        embed_dims: Token size.
        num_heads: Number of heads.
        head_dims: Size of each head.
        rope: Rotary embedding applied to queries and keys, or ``None``.
        num_features: Random features per head.
        seed: Seed of the random features.

    Shape:
        - x: ``(B, T, embed_dims)``
        - output: ``(B, T, embed_dims)``

    Examples:
        >>> attn = PerformerAttention(16, num_heads=2, head_dims=4, num_features=32)
        >>> attn(torch.randn(1, 16, 16), (2, 2, 2, 2)).shape
        torch.Size([1, 16, 16])
    """

    def __init__(self, embed_dims: int, num_heads: int = 8, head_dims: int = 4,
                 rope: Rotary4D | None = None, num_features: int = 64, seed: int = 0):
        super().__init__(embed_dims, num_heads, head_dims, rope)
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer('projection', orthogonal_gaussian(num_features, head_dims, generator))

    def attend(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        """``φ(q) (φ(k)^T v) / (φ(q) φ(k)^T 1)`` per head, without the ``T × T`` scores."""
        scale = self.head_dims ** -0.25  # splits 1/sqrt(D_h) between queries and keys
        phi_q = positive_features(q * scale, self.projection, is_query=True)
        phi_k = positive_features(k * scale, self.projection, is_query=False)
        context = torch.einsum('bhtm,bhtd->bhmd', phi_k, v)
        norm = torch.einsum('bhtm,bhm->bht', phi_q, phi_k.sum(dim=2))
        return torch.einsum('bhtm,bhmd->bhtd', phi_q, context) / norm[..., None]
