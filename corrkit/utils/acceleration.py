"""Opt-in speed-ups for inference and benchmarks: reduced precision and ``torch.compile``.

Both are off by default: fp32 eager is the reference every test compares against.

- :func:`autocast` runs a block under ``torch.autocast`` with bfloat16 or float16.
  Matrix products and convolutions then run in the reduced type (on CPUs with
  AVX-512 BF16 or AMX, and on GPUs, several times faster); reductions,
  normalisations and softmax stay in fp32.
- :func:`compile_forward` compiles a module's ``forward`` with ``torch.compile``
  and falls back to eager execution, with one warning, if compiling fails (no C
  compiler, an unsupported platform or operator). The module itself, its
  parameters and its state-dict keys are unchanged.
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any, ContextManager

import torch
from torch import nn

#: Names accepted for ``precision``, and the dtype matrix products run in.
PRECISIONS = {'fp32': torch.float32, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def as_full_precision(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in fp32 if autocast left it in a reduced float type, else as it is.

    Examples:
        >>> as_full_precision(torch.ones(2, dtype=torch.bfloat16)).dtype
        torch.float32
    """
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def autocast(precision: str, device: torch.device | str) -> ContextManager:
    """A context that runs its block in ``precision`` on ``device``.

    Args:
        precision: ``'fp32'`` (no autocast), ``'bf16'`` or ``'fp16'``.
        device: Where the block runs (its type picks the autocast backend).

    Raises:
        ValueError: For an unknown precision.

    Examples:
        >>> with autocast('bf16', 'cpu'):
        ...     (torch.ones(2, 2) @ torch.ones(2, 2)).dtype
        torch.bfloat16
    """
    dtype = precision_dtype(precision)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)


def precision_dtype(precision: str) -> torch.dtype:
    """The dtype matrix products run in under ``precision``.

    Raises:
        ValueError: For an unknown precision.

    Examples:
        >>> precision_dtype('bf16')
        torch.bfloat16
    """
    if precision not in PRECISIONS:
        raise ValueError(f'precision must be one of {list(PRECISIONS)}, got {precision!r}')
    return PRECISIONS[precision]


def compile_forward(module: nn.Module, **options: Any) -> nn.Module:
    """Replace ``module.forward`` by its ``torch.compile`` version, with an eager fallback.

    Compilation happens on the first call. If ``torch.compile`` is missing or the
    first compiled call raises, a :class:`RuntimeWarning` names the reason and the
    module goes back to its eager ``forward`` for good (the failed call is re-run
    eagerly, so a genuine error in the inputs still surfaces, from eager code).

    Args:
        module: Compiled in place; returned for chaining.
        **options: Passed to ``torch.compile`` (``mode``, ``dynamic``, ...).

    Returns:
        ``module``.
    """
    eager = module.forward
    compiler = getattr(torch, 'compile', None)
    if compiler is None:
        warnings.warn('torch.compile is not available in this PyTorch; running eagerly',
                      RuntimeWarning, stacklevel=2)
        return module
    compiled = compiler(eager, **options)
    working = False  # set once a compiled call has succeeded

    @functools.wraps(eager)
    def forward(*args: Any, **kwargs: Any) -> Any:
        nonlocal working
        if working:
            return compiled(*args, **kwargs)
        try:
            out = compiled(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
            reason = str(err).splitlines()[0] if str(err) else ''
            warnings.warn(f'torch.compile failed for {type(module).__name__} '
                          f'({type(err).__name__}: {reason}); running eagerly',
                          RuntimeWarning, stacklevel=2)
            module.forward = eager
            return eager(*args, **kwargs)
        working = True
        return out

    module.forward = forward
    return module
