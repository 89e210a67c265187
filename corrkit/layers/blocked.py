"""A cache-blocked forward of the match-to-match refiner: per-token work on chunks of tokens.

The straightforward forward of a pre-LN additive-attention block runs every
operation (LayerNorm, the qkv projection, the rotary embedding, the output
projection, the MLP, the residuals) over all ``T`` tokens before the next one
starts: at 15⁴ = 50,625 matches each intermediate is megabytes, so every
operation streams from memory. Here the per-token work runs on chunks of tokens
small enough to stay in cache, and the only operations that need all tokens, the
two global poolings of additive attention, are done so:

- the query pooling ``q̄ = Σ softmax(τ Q w_q) Q`` with a streaming (online)
  softmax over the chunks, while the previous block's output is produced;
- the key pooling, which needs ``q̄`` first, from the keys kept during that pass.

The chunks' rotated queries, keys and values are kept from the pass that makes
them to the pass that uses them (``3 · heads · D_h`` values per token, the only
full-size activations besides the tokens themselves). The result equals the
straightforward forward up to floating-point rounding, and autograd
differentiates it as it is (gradients are exact; memory saved for backward is
that of the straightforward path).

On the CPU the chunks of each pass can run on several threads, one intra-op
thread each (``workers``): a chunk's kernels are too small for PyTorch's
per-kernel parallelism to pay its fork and join, and whole chunks in parallel
avoid it (:mod:`corrkit.utils.threads`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..utils.threads import run_groups
from .additive_attention import AdditiveAttention, head_matrix, head_pool
from .transformer_block import PreNormBlock

__all__ = ['OnlineHeadPool', 'auto_chunk', 'blocked_refine', 'supports_blocking']

#: Rows (batch × tokens) per chunk that :func:`auto_chunk` aims at: the widest
#: per-token intermediates (the MLP's hidden layer, q, k and v) then take a few MiB
#: in fp32, far within L3; smaller chunks cost more in per-call overhead than they
#: gain in cache hits (the refiner at 15⁴ matches, batch 1, interleaved runs: 2048
#: rows 99 ms, 4096 91 ms, 8192 89 ms, 16384 90 ms, unchunked 101 ms).
TARGET_ROWS = 8192


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


def supports_blocking(blocks: Sequence[nn.Module], others: Sequence[nn.Module] = ()) -> bool:
    """Whether :func:`blocked_refine` computes these blocks: pre-LN blocks of
    :class:`AdditiveAttention`, as the refiner builds them by default, with no
    forward hook on them, their modules or ``others`` (the modules applied per
    chunk, such as the embedding: the chunked passes never call the blocks'
    ``forward`` and call the others once per chunk; a hook, such as the
    nonlocality analysis's, gets the straightforward path)."""
    return len(blocks) > 0 and all(
        type(b) is PreNormBlock and type(b.attn) is AdditiveAttention for b in blocks) and \
        not any(m._forward_hooks or m._forward_pre_hooks
                for top in (*blocks, *others) for m in top.modules())


def auto_chunk(batch: int, tokens: int, target_rows: int = TARGET_ROWS) -> int:
    """Tokens per chunk so that a chunk holds about ``target_rows`` rows of every sample.

    Examples:
        >>> auto_chunk(1, 50625), auto_chunk(8, 50625), auto_chunk(1, 100)
        (8192, 1024, 100)
    """
    return max(1, min(tokens, max(target_rows // batch, 128)))


def blocked_refine(embed: nn.Module, blocks: Sequence[PreNormBlock], norm: nn.Module,
                   readout: nn.Module, tokens: Tensor, grid: tuple[int, int, int, int],
                   chunk: int, workers: int = 1) -> Tensor:
    """``readout(norm(blocks(embed(tokens))))``, chunk by chunk.

    With ``workers > 1`` the chunks are dealt round-robin to that many threads,
    each running its share one chunk after another on one intra-op thread
    (:func:`corrkit.utils.threads.run_groups`); each thread keeps its own
    online pool, and the pools are merged at the two points per block where
    every token must have been seen. The result equals the one-thread result up
    to rounding, and is the same from call to call (the merge order is fixed).

    Args:
        embed: Token embedding (applied per token).
        blocks: Pre-LN additive-attention blocks (:func:`supports_blocking`).
        norm: Final LayerNorm.
        readout: Final per-token projection.
        tokens: Input tokens, channels first, as the correlation holds them.
        grid: The 4D grid the tokens flatten.
        chunk: Tokens per chunk.
        workers: Threads the chunks are shared among (at most one per chunk).

    Returns:
        The read-out tokens.

    Shape:
        - tokens: ``(B, L, T)``
        - output: ``(B, T, C_out)``
    """
    total = tokens.shape[-1]
    bounds = [slice(start, min(start + chunk, total)) for start in range(0, total, chunk)]
    workers = max(1, min(workers, len(bounds)))
    groups = [range(first, len(bounds), workers) for first in range(workers)]
    plans = [_BlockPlan(block) for block in blocks]
    xs: list = [None] * len(bounds)  # the tokens entering the current block
    kept: list = [None] * len(bounds)  # their rotated q, k and v

    # one split, not a slice per chunk: a slice's backward writes its gradient into
    # zeros the size of all tokens, the split's backward concatenates them once
    pieces = tokens.split(chunk, dim=-1)

    def first_pass(group: range) -> OnlineHeadPool:  # embed; the first block's q, k, v
        pool = OnlineHeadPool()
        for i in group:
            xs[i] = embed(pieces[i].mT)
            kept[i] = plans[0].project(xs[i], grid, bounds[i], pool)
        return pool

    pool = OnlineHeadPool.merge(run_groups(first_pass, groups, workers))
    out: list = [None] * len(bounds)
    for index, plan in enumerate(plans):
        global_query = pool.result()
        key_scores = plan.key_scores(global_query)
        following = plans[index + 1] if index + 1 < len(plans) else None

        def pool_keys(group: range) -> OnlineHeadPool:
            pool = OnlineHeadPool()
            for i in group:
                keys = kept[i][1]
                pool.update(key_scores @ keys.mT, keys)
            return pool

        global_key = plan.global_key(
            global_query, OnlineHeadPool.merge(run_groups(pool_keys, groups, workers)))

        def output_pass(group: range) -> OnlineHeadPool:  # this block's output, the next's q, k, v
            pool = OnlineHeadPool()
            for i in group:
                q, _, v = kept[i]
                x = plan.output(xs[i], q, v, global_key)
                if following is None:
                    out[i] = readout(norm(x))
                else:
                    xs[i] = x
                    kept[i] = following.project(x, grid, bounds[i], pool)
            return pool

        pools = run_groups(output_pass, groups, workers)
        if following is not None:
            pool = OnlineHeadPool.merge(pools)
    return torch.cat(out, 1)


class _BlockPlan:
    """One block's weights arranged for the chunked passes (built once per forward).

    Per-token work runs on ``(rows, channels)`` matrices (a plain ``addmm`` per
    linear layer); head scores are computed heads first, ``w^T Q^T``, so that
    the softmax reductions read contiguous memory.
    """

    def __init__(self, block: PreNormBlock):
        attn = block.attn
        self.block, self.attn = block, attn
        self.query_scores = head_matrix(attn.query_weight * attn.scale).mT  # (heads, inner)

    def project(self, x: Tensor, grid: tuple[int, int, int, int], rows: slice,
                pool: OnlineHeadPool) -> tuple[Tensor, Tensor, Tensor]:
        """A chunk of the first pass: its ``(q, k, v)`` (q and k rotated), its queries
        added to the α-pooling."""
        attn, block = self.attn, self.block
        b, tc, c = x.shape
        qkv = attn.qkv(block.norm1(x.view(b * tc, c))).view(b, tc, -1)
        q, k, v = qkv.chunk(3, dim=-1)
        if attn.rope is not None:  # q and k are new tensors: keep v alone, not all of qkv
            q, k, v = attn.rope(q, grid, rows), attn.rope(k, grid, rows), v.contiguous()
        pool.update(self.query_scores @ q.mT, q)
        return q, k, v

    def key_scores(self, global_query: Tensor) -> Tensor:
        """Per-head key scores of Eq. 6, ``w_k ⊙ q̄`` arranged heads first, ``(B, heads, inner)``."""
        attn = self.attn
        return head_matrix(global_query * attn.key_weight * attn.scale).mT

    @staticmethod
    def global_key(global_query: Tensor, key_pool: OnlineHeadPool) -> Tensor:
        """``k̄ = q̄ ⊙ Σ_j β_j K_j`` of Eq. 6 from the pooled keys, ``(B, 1, heads · D)``."""
        return (global_query * key_pool.result()).flatten(-2)[:, None]

    def output(self, x: Tensor, q: Tensor, v: Tensor, global_key: Tensor) -> Tensor:
        """A chunk of the block's output from its kept queries and values."""
        attn, block = self.attn, self.block
        b, tc, c = x.shape
        mixed = torch.addcmul(q, v, global_key) if attn.query_residual else v * global_key
        flat = x.view(b * tc, c) + attn.proj(mixed.view(b * tc, -1))
        flat = flat + block.mlp(block.norm2(flat))
        return flat.view(b, tc, c)

