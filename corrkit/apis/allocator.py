"""Keep large CPU tensors in the heap instead of fresh pages from the kernel.

glibc's ``malloc`` serves every block larger than its mmap threshold (at most
32 MiB) with a new ``mmap`` and returns it on ``free``. A matcher's activations
at batch 8 are far larger (``8 · 15⁴`` tokens of 96 floats are 155 MB), so every
one of them is page-faulted in and zeroed by the kernel anew, on every layer of
every step: measured on a 2-core machine, TransforMatcher's refiner took 198 ms
per pair at batch 8 against 62 ms at batch 1, and 71 ms at batch 8 once
large blocks were kept. :func:`tune_cpu_allocator` raises the mmap and trim
thresholds so freed blocks are reused, the same effect the PyTorch CPU
performance guide gets from preloading jemalloc or tcmalloc. The cost is that
the process keeps its peak heap instead of returning it to the system.

:func:`~corrkit.apis.init_matcher` calls it for a model on the CPU, and the
command-line tools at start-up; set ``CORRKIT_TUNE_MALLOC=0`` to leave ``malloc``
alone. Elsewhere than on glibc it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

#: ``mallopt`` parameter numbers from glibc's ``malloc.h``.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: Environment variable that turns the tuning off when set to ``0``.
ENV_VAR = 'CORRKIT_TUNE_MALLOC'

#: Blocks up to this size come from the heap (glibc's dynamic threshold stops at 32 MiB).
#: TransforMatcher's largest activations at batch 8 are 155 MB. A higher value costs
#: memory: at 1 GiB the heap of the Performer ablation's batch-8 training step
#: fragmented past 24 GB, against 18.8 GB untuned and 19.6 GB at this value.
MMAP_THRESHOLD = 256 << 20


def tune_cpu_allocator(mmap_threshold: int = MMAP_THRESHOLD) -> bool:
    """Make glibc reuse freed blocks up to ``mmap_threshold`` bytes.

    Args:
        mmap_threshold: Largest block served from the heap; the trim threshold is
            set to twice this, so the heap is not shrunk after every step.

    Returns:
        ``True`` when both settings were applied; ``False`` when the C library is
        not glibc, ``CORRKIT_TUNE_MALLOC=0`` is set, or ``mallopt`` refused.

    Examples:
        >>> os.environ[ENV_VAR] = '0'
        >>> tune_cpu_allocator()
        False
        >>> del os.environ[ENV_VAR]
    """
    if os.environ.get(ENV_VAR, '1') == '0':
        return False
    if platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc':
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    trim = min(2 * mmap_threshold, 2**31 - 1)
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(
        mallopt(M_TRIM_THRESHOLD, trim))
