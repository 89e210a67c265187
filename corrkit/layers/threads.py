"""Coarse-grained CPU parallelism: groups of small kernels on Python threads, one intra-op thread each.

PyTorch parallelises each CPU kernel across its intra-op threads. For a kernel
over a few hundred kilobytes (an element-wise pass over 8192 × 16 values, a
16 → 64 linear layer on a chunk of tokens) the fork and join cost as much as
the work: on a 2-core machine such a pass took 54 µs on two threads and 26 µs
on one. :func:`run_groups` runs independent groups of such kernels (the
chunks of :func:`corrkit.layers.blocked.blocked_refine`) on a small pool of
Python threads instead, each of which runs its kernels on a single intra-op
thread; PyTorch releases the GIL inside every kernel, so the groups overlap.

The threads carry over what PyTorch keeps per thread and the caller set: grad
mode, inference mode and CPU autocast. Work that another thread would escape is
never sent to one (:func:`can_leave_thread`): under a ``TorchDispatchMode`` or
a ``TorchFunctionMode`` (``FlopCounterMode``, kernel recording), the profiler,
saved-tensor hooks, ``torch.compile`` or ``torch.jit`` tracing the groups run
in the calling thread, one after another.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence, TypeVar

import torch
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

__all__ = ['auto_workers', 'can_leave_thread', 'run_groups', 'worker_pool']

T = TypeVar('T')
R = TypeVar('R')

_POOLS: dict[tuple[int, int], ThreadPoolExecutor] = {}
_LOCK = threading.Lock()


def worker_pool(workers: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``workers`` threads, each set to one intra-op thread.

    Built once per process and size (a forked child builds its own: the parent's
    threads do not survive a fork). ``torch.set_num_threads`` also sets the
    default that new threads start from, so it is restored once the pool's
    threads have set theirs; the calling thread's own setting never changes.
    """
    key = (os.getpid(), workers)
    with _LOCK:
        pool = _POOLS.get(key)
        if pool is None:
            pool = ThreadPoolExecutor(workers, thread_name_prefix='corrkit-worker')
            started = threading.Barrier(workers + 1)  # one task per thread: each one is new

            def single_threaded(_: int) -> int:
                torch.set_num_threads(1)
                # ATen reads the process-wide default into a thread's own setting on
                # its first query: make that happen now, while the default is 1
                count = torch.get_num_threads()
                started.wait()
                return count

            threads = torch.get_num_threads()
            tasks = [pool.submit(single_threaded, i) for i in range(workers)]
            started.wait()
            counts = [task.result() for task in tasks]
            torch.set_num_threads(threads)
            if counts != [1] * workers:  # never seen; a PyTorch that keeps no per-thread setting
                raise RuntimeError(f'pool threads kept {counts} intra-op threads, expected 1')
            _POOLS[key] = pool
    return pool


def can_leave_thread() -> bool:
    """Whether work started here may run on another thread and stay observed.

    False under a dispatch or function mode, the autograd profiler, saved-tensor
    hooks, ``torch.compile`` or ``torch.jit`` tracing: each of these is attached
    to the calling thread and would miss, or break on, work done elsewhere.
    """
    # torch.compile first: dynamo reads it as a constant, and the calls below would
    # break its graph, run this whole function eagerly and so answer True
    if torch.compiler.is_compiling() or torch.jit.is_tracing() or torch.jit.is_scripting():
        return False
    return not (is_in_torch_dispatch_mode() or torch._C._is_torch_function_mode_enabled()
                or torch._C._autograd._profiler_enabled()
                or torch._C._autograd._top_saved_tensors_default_hooks(False) is not None)


def auto_workers(device: torch.device, groups: int, limit: int | None = None) -> int:
    """Threads :func:`run_groups` should use for ``groups`` groups of work on ``device``.

    On the CPU, where :func:`can_leave_thread`: the intra-op thread count, or
    ``limit`` where given, and at most one per group. Otherwise 1: on GPUs the
    kernels are asynchronous already, and elsewhere the work must stay here.

    Examples:
        >>> auto_workers(torch.device('cpu'), 7, limit=2), auto_workers(torch.device('cpu'), 1)
        (2, 1)
    """
    if device.type != 'cpu' or groups < 2 or not can_leave_thread():
        return 1
    return max(1, min(torch.get_num_threads() if limit is None else limit, groups))


def run_groups(fn: Callable[[T], R], groups: Sequence[T], workers: int) -> list[R]:
    """``[fn(g) for g in groups]``, on ``workers`` single-threaded pool threads when
    ``workers > 1``; results in the order of ``groups``, the first error raised.

    ``fn`` must only write to places no other group writes to (a list slot per
    item, its own return value).
    """
    if workers <= 1 or len(groups) <= 1:
        return [fn(group) for group in groups]
    grad, inference = torch.is_grad_enabled(), torch.is_inference_mode_enabled()
    autocast = torch.is_autocast_enabled('cpu')
    dtype = torch.get_autocast_dtype('cpu')

    def call(group: T) -> R:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad), \
                torch.autocast('cpu', dtype=dtype, enabled=autocast):
            return fn(group)

    return list(worker_pool(workers).map(call, groups))
