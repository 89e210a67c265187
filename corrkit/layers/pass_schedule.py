"""The match-to-match refiner's pass schedule, written once for every backend.

A forward of the blocked refiner (:func:`corrkit.layers.blocked.blocked_refine`)
splits its ``T`` tokens into chunks and walks them in passes. Within a pass the
chunks are independent; between passes sit the two global poolings of additive
attention, which need every token::

    first pass       each chunk: embed, the first block's q, k, v, its queries pooled
    for each block:
      merge queries  calling thread: the partial pools give the pooled query q̄
      key pass       each chunk: its keys pooled with q̄'s key scores
      merge keys     calling thread: the partial pools give the pooled key k̄
      output pass    each chunk: the block's output, then the next block's q, k, v
                     and pooled queries, or after the last block the read-out
    finish           calling thread: the read-out chunks, joined

:class:`PassSchedule` owns this order, the chunk bounds and the dealing of chunks
to worker threads (round-robin, one share of a pass per thread,
:func:`corrkit.layers.threads.run_groups`). What a pass computes on one chunk is
a backend's (:class:`PassBackend`): the PyTorch kernels
(:class:`corrkit.layers.torch_passes.TorchPassBackend`), the compiled CPU kernel
(:class:`corrkit.layers.fused.FusedPassBackend`) and the recorder of the
threaded backward (:class:`corrkit.layers.threaded_backward.ThreadedBackward`).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from functools import partial
from typing import Callable, Generic, Sequence, TypeVar

from torch import Tensor

from .threads import run_groups

__all__ = ['PassBackend', 'PassSchedule']

Share = TypeVar('Share')


class PassBackend(ABC, Generic[Share]):
    """The per-chunk kernels and the merges that :class:`PassSchedule` runs.

    A *share* is one thread's part of one pass: the chunks dealt to that thread,
    run one after another. It carries the thread's partial pool (and whatever
    else the backend keeps per thread and pass); :meth:`new_share` makes it on
    the thread, the chunk methods fill it there, and the merge methods receive
    every thread's share of the pass on the calling thread, in a fixed order.
    Chunk methods may only write to their share and to slots of their own chunk;
    the values every chunk reads (the pooled query and key) are set by the
    merges. Blocks and chunks are numbered from 0.

    Attributes:
        depth: The number of attention blocks.

    Examples:
        A backend that only notes which chunks each share ran:

        >>> class Trace(PassBackend):
        ...     depth = 1
        ...     def __init__(self):
        ...         self.merged = []
        ...     def new_share(self):
        ...         return []
        ...     def first_pass(self, share, chunk):
        ...         share.append(chunk)
        ...     def merge_queries(self, block, shares):
        ...         self.merged.append(('queries', block, shares))
        ...     def pool_keys(self, share, block, chunk):
        ...         share.append(chunk)
        ...     def merge_keys(self, block, shares):
        ...         self.merged.append(('keys', block, shares))
        ...     def output_pass(self, share, block, chunk):
        ...         share.append(chunk)
        ...     def finish(self, shares):
        ...         return shares
        >>> trace = Trace()
        >>> PassSchedule(10, chunk=4, workers=2).run(trace)
        [[0, 2], [1]]
        >>> trace.merged
        [('queries', 0, [[0, 2], [1]]), ('keys', 0, [[0, 2], [1]])]
    """

    depth: int

    @abstractmethod
    def new_share(self) -> Share:
        """An empty share of a pass, made on the thread that runs it."""

    @abstractmethod
    def first_pass(self, share: Share, chunk: int) -> None:
        """Embed ``chunk``, make the first block's queries, keys and values and pool
        its queries into ``share``."""

    @abstractmethod
    def merge_queries(self, block: int, shares: Sequence[Share]) -> None:
        """The pooled query of ``block`` (and what its key pass needs) from the
        queries pooled in ``shares``."""

    @abstractmethod
    def pool_keys(self, share: Share, block: int, chunk: int) -> None:
        """Pool the keys of ``chunk`` in ``block`` into ``share``."""

    @abstractmethod
    def merge_keys(self, block: int, shares: Sequence[Share]) -> None:
        """The pooled key of ``block`` from the keys pooled in ``shares``."""

    @abstractmethod
    def output_pass(self, share: Share, block: int, chunk: int) -> None:
        """The output of ``block`` for ``chunk``; then the next block's queries,
        keys and values, its queries pooled into ``share``, or, after the last
        block, the chunk's read-out."""

    @abstractmethod
    def finish(self, shares: Sequence[Share]) -> Tensor:
        """The read-out of all tokens, ``(B, T, C_out)``, once the last output pass
        (its ``shares``) is done."""


class PassSchedule:
    """Chunks of ``total`` tokens, dealt round-robin to ``workers`` threads, and the
    passes of a forward over them.

    Args:
        total: Tokens ``T``.
        chunk: Tokens per chunk (the last chunk may be shorter).
        workers: Threads the chunks are shared among; at most one per chunk.

    Attributes:
        bounds: Each chunk's slice of the tokens.
        groups: Per thread, the chunks it runs, in order.

    Examples:
        >>> schedule = PassSchedule(10, chunk=4, workers=2)
        >>> schedule.bounds
        [slice(0, 4, None), slice(4, 8, None), slice(8, 10, None)]
        >>> schedule.groups
        [range(0, 3, 2), range(1, 3, 2)]
    """

    def __init__(self, total: int, chunk: int, workers: int = 1):
        self.chunk = chunk
        self.bounds = [slice(start, min(start + chunk, total)) for start in range(0, total, chunk)]
        self.workers = max(1, min(workers, len(self.bounds)))
        self.groups = [range(first, len(self.bounds), self.workers)
                       for first in range(self.workers)]

    def run(self, backend: PassBackend) -> Tensor:
        """Every pass of a forward on ``backend``; returns :meth:`PassBackend.finish`."""
        shares = self.on_threads(backend, backend.first_pass)
        for block in range(backend.depth):
            backend.merge_queries(block, shares)
            shares = self.on_threads(backend, partial(_at_block, backend.pool_keys, block))
            backend.merge_keys(block, shares)
            shares = self.on_threads(backend, partial(_at_block, backend.output_pass, block))
        return backend.finish(shares)

    def on_threads(self, backend: PassBackend, step: Callable[[Share, int], None]
                   ) -> list[Share]:
        """One pass: ``step(share, chunk)`` for every chunk, each thread on its own
        chunks and share; the shares in thread order."""
        def run_share(group: range) -> Share:
            share = backend.new_share()
            for chunk in group:
                step(share, chunk)
            return share

        return run_groups(run_share, self.groups, self.workers)


def _at_block(method: Callable[[Share, int, int], None], block: int, share: Share,
              chunk: int) -> None:
    method(share, block, chunk)
