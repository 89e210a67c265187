"""The PyTorch kernels of the blocked refiner's passes, one chunk of tokens at a time.

:class:`TorchPassBackend` is the :class:`~corrkit.layers.pass_schedule.PassBackend`
that :func:`corrkit.layers.blocked.blocked_refine` runs by default, built from
:class:`ChunkedBlock` (one block's weights arranged for the chunked passes) and
:class:`OnlineHeadPool` (a streaming softmax pooling). The functions here are the
block's maths that every backend shares: the scaled query and key weights and
the pooled key of Eq. 6.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .additive_attention import AdditiveAttention, head_matrix, head_pool
from .pass_schedule import PassBackend, PassSchedule
from .transformer_block import PreNormBlock

__all__ = ['ChunkedBlock', 'OnlineHeadPool', 'PassShare', 'TorchPassBackend', 'key_weights',
           'pooled_key', 'query_weights']


class OnlineHeadPool:
    """``Σ_j softmax_j(s) x_j`` per head, accumulated over chunks of tokens.

    Keeps the running maximum, the sum of exponentials and the weighted sum,
    rescaled whenever the maximum grows (the streaming softmax of
    FlashAttention), so the logits of all tokens are never held at once. Logits
    come heads first, ``(B, heads, Tc)``, so that each reduction runs along
    contiguous memory.

    Examples:
        >>> logits, x = torch.randn(1, 2, 10), torch.randn(1, 10, 2 * 3)
        >>> pool = OnlineHeadPool()
        >>> for part in range(0, 10, 4):
        ...     pool.update(logits[..., part:part + 4], x[:, part:part + 4])
        >>> torch.allclose(pool.result(), head_pool(logits.softmax(-1), x), atol=1e-6)
        True
    """

    def __init__(self) -> None:
        self.max: Tensor | None = None
        self.norm: Tensor | None = None
        self.sum: Tensor | None = None

    def update(self, logits: Tensor, x: Tensor) -> None:
        """Add a chunk: ``logits`` ``(B, heads, Tc)``, tokens ``x`` ``(B, Tc, heads · D)``."""
        chunk_max = logits.amax(-1, keepdim=True).detach()  # any shift gives the same softmax
        new_max = chunk_max if self.max is None else torch.maximum(self.max, chunk_max)
        weights = torch.exp(logits - new_max)
        norm, pooled = weights.sum(-1, keepdim=True), head_pool(weights, x)
        if self.max is None:
            self.norm, self.sum = norm, pooled
        else:
            rescale = torch.exp(self.max - new_max)
            self.norm = self.norm * rescale + norm
            self.sum = self.sum * rescale + pooled
        self.max = new_max

    def result(self) -> Tensor:
        """The pooled ``(B, heads, D)``."""
        return self.sum / self.norm

    @classmethod
    def merge(cls, pools: Sequence[OnlineHeadPool]) -> OnlineHeadPool:
        """One pool over the tokens of all ``pools`` (each over its own tokens), in order."""
        pools = [pool for pool in pools if pool.max is not None]
        if len(pools) == 1:
            return pools[0]
        merged = cls()
        merged.max = pools[0].max
        for pool in pools[1:]:
            merged.max = torch.maximum(merged.max, pool.max)
        scales = [torch.exp(pool.max - merged.max) for pool in pools]
        merged.norm = sum(pool.norm * scale for pool, scale in zip(pools, scales))
        merged.sum = sum(pool.sum * scale for pool, scale in zip(pools, scales))
        return merged


def query_weights(attn: AdditiveAttention) -> Tensor:
    """``τ w_q``, the scaled query weights of Eq. 5, ``(heads, D)``."""
    return attn.query_weight * attn.scale


def key_weights(attn: AdditiveAttention, global_query: Tensor) -> Tensor:
    """``τ (q̄ ⊙ w_k)``, the per-sample key weights of Eq. 6, ``(B, heads, D)``:
    ``H w_k = K (q̄ ⊙ w_k)``, so the keys' logits need no ``H``."""
    return global_query * attn.key_weight * attn.scale


def pooled_key(global_query: Tensor, key_pool: OnlineHeadPool) -> Tensor:
    """``k̄ = q̄ ⊙ Σ_j β_j K_j`` of Eq. 6 from the pooled keys, ``(B, 1, heads · D)``."""
    return (global_query * key_pool.result()).flatten(-2)[:, None]


class ChunkedBlock:
    """One block's weights arranged for the chunked passes (built once per forward).

    Per-token work runs on ``(rows, channels)`` matrices (a plain ``addmm`` per
    linear layer); head scores are computed heads first, ``w^T Q^T``, so that
    the softmax reductions read contiguous memory.
    """

    def __init__(self, block: PreNormBlock):
        self.block, self.attn = block, block.attn
        self.query_scores = head_matrix(query_weights(self.attn)).mT  # (heads, inner)

    def project(self, x: Tensor, grid: tuple[int, int, int, int], rows: slice,
                pool: OnlineHeadPool, query_scores: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        """A chunk's ``(q, k, v)`` (q and k rotated), its queries added to the
        α-pooling (with ``query_scores`` in place of the block's own)."""
        attn, block = self.attn, self.block
        b, tc, c = x.shape
        qkv = attn.qkv(block.norm1(x.view(b * tc, c))).view(b, tc, -1)
        q, k, v = qkv.chunk(3, dim=-1)
        if attn.rope is not None:  # q and k are new tensors: keep v alone, not all of qkv
            q, k, v = attn.rope(q, grid, rows), attn.rope(k, grid, rows), v.contiguous()
        scores = self.query_scores if query_scores is None else query_scores
        pool.update(scores @ q.mT, q)
        return q, k, v

    def key_scores(self, global_query: Tensor) -> Tensor:
        """:func:`key_weights` arranged heads first, ``(B, heads, inner)``."""
        return head_matrix(key_weights(self.attn, global_query)).mT

    def output(self, x: Tensor, q: Tensor, v: Tensor, global_key: Tensor) -> Tensor:
        """A chunk of the block's output from its kept queries and values."""
        attn, block = self.attn, self.block
        b, tc, c = x.shape
        mixed = torch.addcmul(q, v, global_key) if attn.query_residual else v * global_key
        flat = x.view(b * tc, c) + attn.proj(mixed.view(b * tc, -1))
        flat = flat + block.mlp(block.norm2(flat))
        return flat.view(b, tc, c)


class PassShare:
    """One thread's share of one pass of :class:`TorchPassBackend`: its partial pool.

    The backend reads every value made outside the share through :meth:`take`
    and hands every value it makes to :meth:`give`: here both leave the values
    alone, the threaded backward's shares (its graph pieces) cut and record them.
    """

    def __init__(self) -> None:
        self.pool = OnlineHeadPool()

    def take(self, value: Tensor) -> Tensor:
        """``value``, made outside this share, as this share uses it."""
        return value

    def take_pool(self, pool: OnlineHeadPool) -> OnlineHeadPool:
        """Another share's ``pool``, as this share merges it."""
        return pool

    def give(self, *values: Tensor) -> None:
        """Values this share made that others will use."""


class TorchPassBackend(PassBackend[PassShare]):
    """The PyTorch :class:`~corrkit.layers.pass_schedule.PassBackend`:
    ``readout(norm(blocks(embed(tokens))))`` with each chunk's per-token work in
    PyTorch kernels.

    Args:
        embed: Token embedding (applied per token).
        blocks: Pre-LN additive-attention blocks.
        norm: Final LayerNorm.
        readout: Final per-token projection.
        grid: The 4D grid the tokens flatten.
        schedule: The chunks and threads.

    Examples:
        >>> from corrkit.layers import AdditiveAttention, PreNormBlock
        >>> blocks = [PreNormBlock(4, AdditiveAttention(4, 2, 2))]
        >>> backend = TorchPassBackend(nn.Linear(3, 4), blocks, nn.LayerNorm(4),
        ...                            nn.Linear(4, 1), (2, 2, 2, 2), PassSchedule(16, 5))
        >>> backend.refine(torch.rand(1, 3, 16)).shape
        torch.Size([1, 16, 1])
    """

    def __init__(self, embed: nn.Module, blocks: Sequence[PreNormBlock], norm: nn.Module,
                 readout: nn.Module, grid: tuple[int, int, int, int], schedule: PassSchedule):
        self.embed, self.blocks, self.norm, self.readout = embed, blocks, norm, readout
        self.grid, self.schedule = grid, schedule
        self.depth = len(blocks)

    def refine(self, tokens: Tensor) -> Tensor:
        """The read-out ``(B, T, C_out)`` of ``tokens`` ``(B, L, T)``."""
        self.chunked = [ChunkedBlock(block) for block in self.blocks]
        # one split, not a slice per chunk: a slice's backward writes its gradient into
        # zeros the size of all tokens, the split's backward concatenates them once
        self.pieces = tokens.split(self.schedule.chunk, dim=-1)
        chunks = len(self.schedule.bounds)
        self.entering: list = [None] * chunks  # per chunk: (x, q, k, v) entering a block
        self.out: list = [None] * chunks  # the read-out chunks
        out = self.schedule.run(self)
        self.entering = []  # the last block's inputs, no longer needed
        return out

    def new_share(self) -> PassShare:
        return PassShare()

    def first_pass(self, share: PassShare, chunk: int) -> None:
        x = self.embed(share.take(self.pieces[chunk]).mT)
        self._enter(share, 0, chunk, x)

    def _enter(self, share: PassShare, block: int, chunk: int, x: Tensor) -> None:
        """``x`` entering ``block``: its q, k, v made, its queries pooled."""
        plan = self.chunked[block]
        qkv = plan.project(x, self.grid, self.schedule.bounds[chunk], share.pool,
                           share.take(plan.query_scores))
        self.entering[chunk] = (x, *qkv)
        share.give(x, *qkv)

    def merge_queries(self, block: int, shares: Sequence[PassShare]) -> None:
        here, pool = self.merged(shares)
        self.global_query = pool.result()
        self.key_scores = self.chunked[block].key_scores(self.global_query)
        here.give(self.global_query, self.key_scores)

    def pool_keys(self, share: PassShare, block: int, chunk: int) -> None:
        keys = share.take(self.entering[chunk][2])
        share.pool.update(share.take(self.key_scores) @ keys.mT, keys)

    def merge_keys(self, block: int, shares: Sequence[PassShare]) -> None:
        here, pool = self.merged(shares)
        self.global_key = pooled_key(here.take(self.global_query), pool)
        here.give(self.global_key)

    def output_pass(self, share: PassShare, block: int, chunk: int) -> None:
        x, q, _, v = self.entering[chunk]
        x = self.chunked[block].output(share.take(x), share.take(q), share.take(v),
                                      share.take(self.global_key))
        if block + 1 < self.depth:
            self._enter(share, block + 1, chunk, x)
        else:
            self.out[chunk] = self.readout(self.norm(x))
            share.give(self.out[chunk])

    def finish(self, shares: Sequence[PassShare]) -> Tensor:
        return torch.cat(self.out, 1)

    def merged(self, shares: Sequence[PassShare]) -> tuple[PassShare, OnlineHeadPool]:
        """A share for the calling thread's work after a pass, and in it the pools of
        the pass's ``shares`` merged."""
        here = self.calling_share(shares)
        return here, OnlineHeadPool.merge([here.take_pool(share.pool) for share in shares])

    def calling_share(self, shares: Sequence[PassShare]) -> PassShare:
        """The share of the calling thread's work that follows the pass of ``shares``."""
        return PassShare()
