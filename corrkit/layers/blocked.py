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
straightforward forward up to floating-point rounding; its gradients are exact,
and the memory saved for the backward is that of the straightforward path.

On the CPU the chunks of each pass can run on several threads, one intra-op
thread each (``workers``): a chunk's kernels are too small for PyTorch's
per-kernel parallelism to pay its fork and join, and whole chunks in parallel
avoid it (:mod:`corrkit.layers.threads`). Where gradients are needed, the
backward runs on the same threads too (see :func:`blocked_refine`).

The order of the passes is :class:`~corrkit.layers.pass_schedule.PassSchedule`'s,
shared by every backend: the PyTorch kernels here
(:mod:`corrkit.layers.torch_passes`), the threaded backward's recorder
(:mod:`corrkit.layers.threaded_backward`) and the compiled CPU kernel
(:mod:`corrkit.layers.fused`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .additive_attention import AdditiveAttention
from .pass_schedule import PassSchedule
from .threaded_backward import ThreadedBackward, ThreadedBackwardFunction
from .torch_passes import TorchPassBackend
from .transformer_block import PreNormBlock

__all__ = ['TARGET_ROWS', 'auto_chunk', 'blocked_refine', 'supports_blocking']

#: Rows (batch × tokens) per chunk that :func:`auto_chunk` aims at: the widest
#: per-token intermediates (the MLP's hidden layer, q, k and v) then take a few MiB
#: in fp32, far within L3; smaller chunks cost more in per-call overhead than they
#: gain in cache hits (the refiner at 15⁴ matches, batch 1, interleaved runs: 2048
#: rows 99 ms, 4096 91 ms, 8192 89 ms, 16384 90 ms, unchunked 101 ms).
TARGET_ROWS = 8192


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


def auto_chunk(batch: int, tokens: int, target_rows: int = TARGET_ROWS, workers: int = 1) -> int:
    """Tokens per chunk so that a chunk holds about ``target_rows`` rows of every sample.

    With ``workers`` threads the chunks are also made equal and as many as a
    multiple of ``workers`` (the nearest to ``target_rows``), so that the threads,
    which take the chunks round-robin, get equal shares: at 15⁴ tokens, batch 1,
    7 chunks of 8192 (the last 1473) left one of two threads a sixth more work
    than the other; 6 chunks of 8438 leave none (the refiner 3–4 % faster,
    interleaved runs).

    Examples:
        >>> auto_chunk(1, 50625), auto_chunk(8, 50625), auto_chunk(1, 100)
        (8192, 1024, 100)
        >>> auto_chunk(1, 50625, workers=2), auto_chunk(8, 50625, workers=2)
        (8438, 1013)
    """
    chunk = max(1, min(tokens, max(target_rows // batch, 128)))
    if workers <= 1 or tokens <= chunk:
        return chunk
    count = max(workers, round(tokens / chunk / workers) * workers)
    return -(-tokens // count)


def blocked_refine(embed: nn.Module, blocks: Sequence[PreNormBlock], norm: nn.Module,
                   readout: nn.Module, tokens: Tensor, grid: tuple[int, int, int, int],
                   chunk: int, workers: int = 1) -> Tensor:
    """``readout(norm(blocks(embed(tokens))))``, chunk by chunk.

    With ``workers > 1`` the chunks are dealt round-robin to that many threads,
    each running its share one chunk after another on one intra-op thread
    (:func:`corrkit.layers.threads.run_groups`); each thread keeps its own
    online pool, and the pools are merged at the two points per block where
    every token must have been seen. The result equals the one-thread result up
    to rounding, and is the same from call to call (the merge order is fixed).
    Where gradients are needed, each thread's share of every pass is a graph of
    its own, cut from the others at the pooled query and key, and the backward
    runs those graphs on the same threads, pass by pass in reverse (autograd
    alone would run all of it on the calling thread); the gradients are summed
    in a fixed order, so they too are the same from call to call. That backward
    is first-order only: a second derivative needs ``workers=1``
    (:class:`~corrkit.layers.threaded_backward.ThreadedBackward`).

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
    schedule = PassSchedule(tokens.shape[-1], chunk, workers)
    if schedule.workers > 1 and torch.is_grad_enabled():
        params = [p for m in (embed, *blocks, norm, readout) for p in m.parameters()
                  if p.requires_grad]
        if tokens.requires_grad or params:
            run = ThreadedBackward(embed, blocks, norm, readout, grid, schedule, params)
            return ThreadedBackwardFunction.apply(run, tokens, *params)
    return TorchPassBackend(embed, blocks, norm, readout, grid, schedule).refine(tokens)
