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
avoid it (:mod:`corrkit.utils.threads`). Where gradients are needed, the
backward runs on the same threads too (see :func:`blocked_refine`).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ..utils.threads import can_leave_thread, run_groups
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
    (:func:`corrkit.utils.threads.run_groups`); each thread keeps its own
    online pool, and the pools are merged at the two points per block where
    every token must have been seen. The result equals the one-thread result up
    to rounding, and is the same from call to call (the merge order is fixed).
    Where gradients are needed, each thread's share of every pass is a graph of
    its own, cut from the others at the pooled query and key, and the backward
    runs those graphs on the same threads, pass by pass in reverse (autograd
    alone would run all of it on the calling thread); the gradients are summed
    in a fixed order, so they too are the same from call to call. That backward
    is first-order only: a second derivative needs ``workers=1``.

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
    if workers > 1 and torch.is_grad_enabled():
        params = [p for m in (embed, *blocks, norm, readout) for p in m.parameters()
                  if p.requires_grad]
        if tokens.requires_grad or params:
            run = _Segmented(embed, blocks, norm, readout, grid, chunk, bounds, groups, params)
            return _SegmentedRefine.apply(run, tokens, *params)
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
                pool: OnlineHeadPool, query_scores: Tensor | None = None
                ) -> tuple[Tensor, Tensor, Tensor]:
        """A chunk of the first pass: its ``(q, k, v)`` (q and k rotated), its queries
        added to the α-pooling (with ``query_scores`` in place of the plan's own)."""
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


class _Piece:
    """A graph of its own: one thread's share of one pass, or the calling thread's
    pooled values of one block, where gradients are needed.

    Its inputs are cut (detached) from the tensors that made them, its
    ``origins``; its backward returns the gradients of those inputs, which
    become the gradients of the origins' pieces' outputs.
    """

    __slots__ = ('inputs', 'origins', 'outputs')

    def __init__(self) -> None:
        self.inputs: list[Tensor] = []
        self.origins: list[Tensor] = []
        self.outputs: list[Tensor] = []

    def cut(self, origin: Tensor) -> Tensor:
        """``origin`` as an input of this piece."""
        leaf = origin.detach().requires_grad_()
        self.inputs.append(leaf)
        self.origins.append(origin)
        return leaf

    def backward(self, pending: dict[int, Tensor], params: list[Tensor]
                 ) -> tuple[list[Tensor | None], tuple[Tensor | None, ...]]:
        """The gradients of the inputs and of ``params`` from those of the outputs
        (looked up in ``pending``, by tensor identity)."""
        outputs = [o for o in self.outputs if o.requires_grad and id(o) in pending]
        if not outputs or not (self.inputs or params):
            return [None] * len(self.inputs), (None,) * len(params)
        grads = torch.autograd.grad(outputs, self.inputs + params,
                                    [pending[id(o)] for o in outputs], allow_unused=True)
        return list(grads[:len(self.inputs)]), grads[len(self.inputs):]


class _Segmented:
    """:func:`blocked_refine` with a backward that runs on the worker threads too.

    Autograd runs a CPU backward on the thread that calls it, one node after
    another, so a forward whose chunks ran on several threads still had a
    one-thread backward. Here every thread's share of every pass is a graph of
    its own (:class:`_Piece`), cut from the others where a value crosses from one
    pass to the next. The values the threads share, each block's pooled query
    ``q̄`` with its key score matrix and its pooled key ``k̄``, are computed on
    the calling thread from the threads' partial pools, in small graphs of
    their own. The backward walks the pieces in reverse: the threads
    differentiate their pieces of a pass at the same time, the calling thread
    adds up, in a fixed order, what they return for each cut value, and so on
    down to the tokens. Parameters' gradients are returned by every piece, not
    accumulated in place, and summed in a fixed order.
    """

    def __init__(self, embed: nn.Module, blocks: Sequence[PreNormBlock], norm: nn.Module,
                 readout: nn.Module, grid: tuple[int, int, int, int], chunk: int,
                 bounds: list[slice], groups: list[range], params: list[Tensor]):
        self.embed, self.blocks, self.norm, self.readout = embed, blocks, norm, readout
        self.grid, self.chunk, self.bounds, self.groups = grid, chunk, bounds, groups
        self.params = params
        self.workers = len(groups)
        self.stages: list[tuple[bool, list[_Piece]]] = []  # (on the threads, pieces)
        self.pieces: tuple[Tensor, ...] = ()  # the token chunks
        self.out: list[Tensor] = []  # the read-out chunks

    def forward(self, tokens: Tensor) -> Tensor:
        grid, bounds, groups = self.grid, self.bounds, self.groups
        plans = [_BlockPlan(block) for block in self.blocks]
        scores = _Piece()  # every block's query score matrix, from its weights
        scores.outputs = [plan.query_scores for plan in plans]
        self.stages = [(False, [scores])]
        self.pieces = tokens.detach().split(self.chunk, dim=-1)
        need_tokens = tokens.requires_grad
        entering: list = [None] * len(bounds)  # per chunk: (x, q, k, v) entering a block
        out: list = [None] * len(bounds)

        def first_pass(group: range) -> tuple[_Piece, OnlineHeadPool]:
            piece, pool = _Piece(), OnlineHeadPool()
            query_scores = piece.cut(plans[0].query_scores)
            for i in group:
                chunk = piece.cut(self.pieces[i]) if need_tokens else self.pieces[i]
                x = self.embed(chunk.mT)
                entering[i] = (x, *plans[0].project(x, grid, bounds[i], pool, query_scores))
                piece.outputs.extend(entering[i])
            piece.outputs.extend((pool.norm, pool.sum))
            return piece, pool

        partial = self._threads(first_pass)
        for index, plan in enumerate(plans):
            following = plans[index + 1] if index + 1 < len(plans) else None
            queries = _Piece()  # the pooled query and the key score matrix
            global_query = self._merge(queries, partial).result()
            key_scores = plan.key_scores(global_query)
            queries.outputs = [global_query, key_scores]
            self.stages.append((False, [queries]))

            def key_pass(group: range) -> tuple[_Piece, OnlineHeadPool]:
                piece, pool = _Piece(), OnlineHeadPool()
                cut_scores = piece.cut(key_scores)
                for i in group:
                    keys = piece.cut(entering[i][2])
                    pool.update(cut_scores @ keys.mT, keys)
                piece.outputs.extend((pool.norm, pool.sum))
                return piece, pool

            partial = self._threads(key_pass)
            keys = _Piece()  # the pooled key
            global_key = plan.global_key(keys.cut(global_query), self._merge(keys, partial))
            keys.outputs = [global_key]
            self.stages.append((False, [keys]))

            def output_pass(group: range) -> tuple[_Piece, OnlineHeadPool]:
                piece, pool = _Piece(), OnlineHeadPool()
                cut_key = piece.cut(global_key)
                if following is not None:
                    query_scores = piece.cut(following.query_scores)
                for i in group:
                    x, q, _, v = entering[i]
                    x = plan.output(piece.cut(x), piece.cut(q), piece.cut(v), cut_key)
                    if following is None:
                        out[i] = self.readout(self.norm(x))
                        piece.outputs.append(out[i])
                    else:
                        entering[i] = (x, *following.project(x, grid, bounds[i], pool,
                                                             query_scores))
                        piece.outputs.extend(entering[i])
                if following is not None:
                    piece.outputs.extend((pool.norm, pool.sum))
                return piece, pool

            partial = self._threads(output_pass)
        self.out = out
        return torch.cat([o.detach() for o in out], 1)

    def _threads(self, fn) -> list[OnlineHeadPool]:
        """One pass on the threads; its pieces recorded, its partial pools returned."""
        results = run_groups(fn, self.groups, self.workers)
        self.stages.append((True, [piece for piece, _ in results]))
        return [pool for _, pool in results]

    @staticmethod
    def _merge(piece: _Piece, partial: list[OnlineHeadPool]) -> OnlineHeadPool:
        """The threads' partial pools merged in ``piece``, from cuts of their sums."""
        cut = []
        for pool in partial:
            leaf = OnlineHeadPool()
            leaf.max, leaf.norm, leaf.sum = pool.max, piece.cut(pool.norm), piece.cut(pool.sum)
            cut.append(leaf)
        return OnlineHeadPool.merge(cut)

    def backward(self, grad: Tensor) -> tuple[Tensor | None, list[Tensor | None]]:
        """The tokens' and the parameters' gradients from the output's ``grad``."""
        pending: dict[int, Tensor] = {}
        for out, g in zip(self.out, grad.split(self.chunk, 1)):
            pending[id(out)] = g
        totals: list[Tensor | None] = [None] * len(self.params)
        # a mode, the profiler or hooks around the backward see only this thread
        threads = self.workers if can_leave_thread() else 1
        while self.stages:
            threaded, pieces = self.stages.pop()
            if threaded:
                results = run_groups(lambda piece: piece.backward(pending, self.params),
                                     pieces, threads)
            else:
                results = [piece.backward(pending, self.params) for piece in pieces]
            for piece in pieces:  # their outputs' gradients are used
                for o in piece.outputs:
                    pending.pop(id(o), None)
            for piece, (inputs, params) in zip(pieces, results):
                for origin, g in zip(piece.origins, inputs):
                    if g is not None:
                        key = id(origin)
                        pending[key] = g if key not in pending else pending[key] + g
                for index, g in enumerate(params):
                    if g is not None:
                        totals[index] = g if totals[index] is None else totals[index] + g
        chunks = [pending.get(id(p)) for p in self.pieces]
        self.pieces, self.out = (), []
        grad_tokens = torch.cat(chunks, -1) if all(c is not None for c in chunks) else None
        return grad_tokens, totals


class _SegmentedRefine(torch.autograd.Function):
    """The autograd node of :class:`_Segmented`: the forward as it is, the backward
    through the pieces, which it frees as autograd frees a graph. A second backward
    through the same output (``retain_graph=True``, as ``gradcheck`` runs) first
    runs the forward again from the saved tokens and weights. First-order only."""

    @staticmethod
    def forward(ctx, run: _Segmented, tokens: Tensor, *params: Tensor) -> Tensor:
        with torch.enable_grad():
            out = run.forward(tokens)
        ctx.run = run
        ctx.autocast = torch.is_autocast_enabled('cpu'), torch.get_autocast_dtype('cpu')
        ctx.save_for_backward(tokens, *params)  # their versions are checked, as autograd does
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        if torch.is_grad_enabled():  # create_graph=True: a second derivative to come
            raise RuntimeError(
                'MatchToMatchRefiner with workers > 1 computes first derivatives only '
                '(its backward runs on worker threads); for a second derivative '
                '(create_graph=True) set workers=1')
        tokens, *_ = ctx.saved_tensors
        run = ctx.run
        if not run.stages:  # the pieces were freed by an earlier backward
            enabled, dtype = ctx.autocast
            with torch.enable_grad(), torch.autocast('cpu', dtype=dtype, enabled=enabled):
                run.forward(tokens)
        grad_tokens, grad_params = run.backward(grad)
        return (None, grad_tokens, *grad_params)
