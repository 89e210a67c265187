"""The blocked refiner's backward on the worker threads.

Autograd runs a CPU backward on the thread that calls it, one node after
another, so a forward whose chunks ran on several threads would still have a
one-thread backward. :class:`ThreadedBackward` runs the forward's passes
(:class:`~corrkit.layers.pass_schedule.PassSchedule`) with the PyTorch kernels
and records every thread's share of every pass as a graph of its own
(:class:`GraphPiece`), cut from the others where a value crosses from one pass
to the next; :class:`ThreadedBackwardFunction` is the autograd node that runs
those pieces' backward on the same threads.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .pass_schedule import PassSchedule
from .threads import can_leave_thread, run_groups
from .torch_passes import OnlineHeadPool, PassShare, TorchPassBackend
from .transformer_block import PreNormBlock

__all__ = ['GraphPiece', 'ThreadedBackward', 'ThreadedBackwardFunction']


class GraphPiece(PassShare):
    """A graph of its own: one thread's share of one pass, or the calling thread's
    merge of the shares' pools, where gradients are needed.

    Its inputs are cut (detached) from the tensors that made them, its
    ``origins``, once per piece; its backward returns the gradients of those
    inputs, which become the gradients of the origins' pieces' outputs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[Tensor] = []
        self.origins: list[Tensor] = []
        self.outputs: list[Tensor] = []
        self.cuts: dict[int, Tensor] = {}  # the input of each origin, by tensor identity

    def take(self, value: Tensor) -> Tensor:
        """``value`` as an input of this piece, where it needs a gradient."""
        if not value.requires_grad:
            return value
        leaf = self.cuts.get(id(value))
        if leaf is None:
            leaf = self.cuts[id(value)] = value.detach().requires_grad_()
            self.inputs.append(leaf)
            self.origins.append(value)
        return leaf

    def take_pool(self, pool: OnlineHeadPool) -> OnlineHeadPool:
        """``pool`` with its sums as inputs of this piece."""
        leaf = OnlineHeadPool()
        leaf.max, leaf.norm, leaf.sum = pool.max, self.take(pool.norm), self.take(pool.sum)
        return leaf

    def give(self, *values: Tensor) -> None:
        self.outputs.extend(values)

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


class ThreadedBackward(TorchPassBackend):
    """:class:`~corrkit.layers.torch_passes.TorchPassBackend` recorded piece by piece
    (:class:`GraphPiece`), with a backward that runs on the worker threads too.

    Every thread's share of a pass is a piece. The values the threads share, each
    block's pooled query ``q̄`` with its key score matrix and its pooled key ``k̄``,
    are computed on the calling thread from the threads' partial pools, in
    pieces of their own. :meth:`backward` walks the pieces in reverse: the threads
    differentiate their pieces of a pass at the same time, the calling thread adds
    up, in a fixed order, what they return for each cut value, and so on down to
    the tokens. Parameters' gradients are returned by every piece, not
    accumulated in place, and summed in a fixed order.

    Args:
        params: The parameters to differentiate; the other arguments are
            :class:`~corrkit.layers.torch_passes.TorchPassBackend`'s.
    """

    def __init__(self, embed: nn.Module, blocks: Sequence[PreNormBlock], norm: nn.Module,
                 readout: nn.Module, grid: tuple[int, int, int, int], schedule: PassSchedule,
                 params: list[Tensor]):
        super().__init__(embed, blocks, norm, readout, grid, schedule)
        self.params = params
        self.stages: list[tuple[bool, list[GraphPiece]]] = []  # (on the threads, pieces)
        self.pieces: tuple[Tensor, ...] = ()  # the token chunks
        self.out: list[Tensor] = []  # the read-out chunks

    def refine(self, tokens: Tensor) -> Tensor:
        """The forward, recorded; the read-out returned without a graph."""
        scores = GraphPiece()  # every block's query score matrix, from its weights
        self.stages = [(False, [scores])]
        # cut from the caller's graph: the chunks' gradients are collected by identity
        out = super().refine(tokens.detach().requires_grad_(tokens.requires_grad))
        scores.give(*(block.query_scores for block in self.chunked))
        return out

    def new_share(self) -> GraphPiece:
        return GraphPiece()

    def calling_share(self, shares: Sequence[GraphPiece]) -> GraphPiece:
        self.record(shares)
        piece = GraphPiece()
        self.stages.append((False, [piece]))
        return piece

    def record(self, shares: Sequence[GraphPiece]) -> None:
        """A pass's shares as a stage on the threads, their pools' sums as outputs."""
        for piece in shares:
            if piece.pool.max is not None:
                piece.give(piece.pool.norm, piece.pool.sum)
        self.stages.append((True, list(shares)))

    def finish(self, shares: Sequence[GraphPiece]) -> Tensor:
        self.record(shares)
        return torch.cat([o.detach() for o in self.out], 1)

    def backward(self, grad: Tensor) -> tuple[Tensor | None, list[Tensor | None]]:
        """The tokens' and the parameters' gradients from the output's ``grad``."""
        pending: dict[int, Tensor] = {}
        for out, g in zip(self.out, grad.split(self.schedule.chunk, 1)):
            pending[id(out)] = g
        totals: list[Tensor | None] = [None] * len(self.params)
        # a mode, the profiler or hooks around the backward see only this thread
        threads = self.schedule.workers if can_leave_thread() else 1
        while self.stages:
            threaded, pieces = self.stages.pop()
            results = run_groups(lambda piece: piece.backward(pending, self.params), pieces,
                                 threads if threaded else 1)
            _collect(pending, totals, pieces, results)
        chunks = [pending.get(id(p)) for p in self.pieces]
        self.pieces, self.out = (), []
        grad_tokens = torch.cat(chunks, -1) if all(c is not None for c in chunks) else None
        return grad_tokens, totals


def _collect(pending: dict[int, Tensor], totals: list[Tensor | None],
             pieces: Sequence[GraphPiece], results: list) -> None:
    """The gradients ``results`` of a stage's ``pieces`` added, in order, to those of
    their inputs' origins (``pending``) and of the parameters (``totals``); the
    gradients of the pieces' outputs, now used, dropped."""
    for piece in pieces:
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


class ThreadedBackwardFunction(torch.autograd.Function):
    """The autograd node of :class:`ThreadedBackward`: the forward as it is, the
    backward through the pieces, which it frees as autograd frees a graph. A second
    backward through the same output (``retain_graph=True``, as ``gradcheck`` runs)
    first runs the forward again from the saved tokens and weights. First-order only."""

    @staticmethod
    def forward(ctx, run: ThreadedBackward, tokens: Tensor, *params: Tensor) -> Tensor:
        with torch.enable_grad():
            out = run.refine(tokens)
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
                run.refine(tokens)
        grad_tokens, grad_params = run.backward(grad)
        return (None, grad_tokens, *grad_params)
