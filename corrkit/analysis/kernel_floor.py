"""The kernel floor: what a call would cost if only its essential kernels ran.

The FLOP floor of :mod:`corrkit.analysis.benchmark` assumes every added FLOP runs
at the speed of one large matrix product. The small products of a refiner never
do, and everything between them (rotary embeddings, poolings, residual adds,
copies) costs memory passes, not FLOPs. The kernel floor measures instead:

1. Every aten operator a call runs is recorded (a ``TorchDispatchMode``, below
   autograd, so a training step's backward kernels are recorded too; composite
   operators are decomposed into their kernels) with the shapes, strides and
   dtypes of its arguments.
2. The kernels of a reference call (the bare backbone) are taken away, as a
   multiset: the same operator on the same shapes cancels.
3. The remaining kernels of one tier (:data:`TIERS`) are replayed, each as often
   as it ran, on random inputs of the recorded layouts, and the replay is timed
   in the same rounds as the reference (:func:`~corrkit.analysis.benchmark.time_interleaved`).

``products`` are the matrix products and convolutions; ``products + norms`` adds
the normalisations and activations, which an eager implementation runs as
passes of their own. A call whose time equals its reference's plus a tier's
replay would run nothing else: ``1 + replay / reference`` is the least ratio an
implementation that runs those kernels one by one (as eager PyTorch does) can
reach, and only fusing everything else into them (a compiled or hand-written
kernel) can approach the ``products`` figure. Replayed kernels read inputs
nothing else has evicted, so the figure is optimistic, as a floor should be.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Any, Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ['KernelReplay', 'NORMALISATIONS', 'PRODUCTS', 'ReplayTooLarge', 'TIERS',
           'default_replay_budget', 'kernel_replays', 'record_kernels', 'replay_bytes']

#: Matrix products and convolutions, forward and backward.
PRODUCTS = frozenset({'mm', 'addmm', 'bmm', 'baddbmm', 'convolution', '_convolution',
                      'convolution_backward'})
#: Normalisations and activations, forward and backward.
NORMALISATIONS = frozenset({
    'native_layer_norm', 'native_layer_norm_backward', 'native_batch_norm',
    'native_batch_norm_backward', '_native_batch_norm_legit',
    '_native_batch_norm_legit_no_training', 'native_group_norm', 'native_group_norm_backward',
    'gelu', 'gelu_backward', 'relu', 'threshold_backward', 'silu', 'silu_backward'})
#: Tier name → the operator names (``func.overloadpacket.__name__``) it keeps.
TIERS = {'products': PRODUCTS, 'products + norms': PRODUCTS | NORMALISATIONS}

_TENSOR = 'tensor'


def _spec(value: Any) -> Any:
    """A hashable description of an argument: tensors by layout, sequences as tuples."""
    if isinstance(value, torch.Tensor):
        return (_TENSOR, tuple(value.shape), tuple(value.stride()), value.dtype,
                value.device.type, value.device.index)
    if isinstance(value, (list, tuple)):
        return tuple(_spec(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, _spec(v)) for k, v in value.items()))
    return value


class ReplayTooLarge(MemoryError):
    """The inputs of a kernel replay would take more memory than allowed."""


def _storage_numel(shape: tuple, stride: tuple) -> int:
    """Elements of one storage large enough for the strides (expanded tensors share)."""
    return 1 + sum((size - 1) * step for size, step in zip(shape, stride)) if all(shape) else 0


def _tensor_specs(spec: Any):
    """Every tensor description inside an argument description."""
    if isinstance(spec, tuple) and spec and spec[0] == _TENSOR:
        yield spec
    elif isinstance(spec, tuple):
        for value in spec:
            yield from _tensor_specs(value)


def _build(spec: Any, cache: dict | None = None) -> Any:
    """Arguments from :func:`_spec`: random tensors of the recorded layout, one per
    distinct layout when ``cache`` is given (kernels of the same layouts share them)."""
    if isinstance(spec, tuple) and spec and spec[0] == _TENSOR:
        if cache is not None and spec in cache:
            return cache[spec]
        _, shape, stride, dtype, dev_type, dev_index = spec
        device = torch.device(dev_type, dev_index) if dev_index is not None else dev_type
        numel = _storage_numel(shape, stride)
        if dtype.is_floating_point or dtype.is_complex:
            base = torch.randn(numel, dtype=dtype, device=device)
        else:
            base = torch.zeros(numel, dtype=dtype, device=device)
        tensor = base.as_strided(shape, stride)
        if cache is not None:
            cache[spec] = tensor
        return tensor
    if isinstance(spec, tuple):
        return [_build(v, cache) for v in spec]
    return spec


def replay_bytes(calls: Counter) -> int:
    """Bytes the inputs of a replay of ``calls`` take, one tensor per distinct layout."""
    specs = {t for key in calls for t in _tensor_specs(key[1:])}
    return sum(_storage_numel(shape, stride) * dtype.itemsize
               for _, shape, stride, dtype, *_ in specs)


def default_replay_budget(device: torch.device | str = 'cpu') -> int:
    """A quarter of the device's memory (the machine's, for the CPU): the most a
    replay's inputs may take next to the model being measured."""
    device = torch.device(device)
    if device.type == 'cuda':
        return torch.cuda.get_device_properties(device).total_memory // 4
    try:
        return os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') // 4
    except (ValueError, OSError, AttributeError):  # no sysconf: 4 GiB
        return 4 << 30


class _Recorder(TorchDispatchMode):
    def __init__(self, names: frozenset[str]):
        super().__init__()
        self.names = names
        self.calls: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        # composite operators (linear, matmul, layer_norm: what inference mode shows
        # here) are decomposed into the kernels autograd mode would show
        with self:
            out = func.decompose(*args, **kwargs)
        if out is not NotImplemented:
            return out
        if func.overloadpacket.__name__ in self.names:
            self.calls[(func, _spec(args), _spec(kwargs))] += 1
        return func(*args, **kwargs)


def record_kernels(fn: Callable[[], object], names: frozenset[str] = TIERS['products + norms']
                   ) -> Counter:
    """The kernels ``fn()`` runs among ``names``, counted by operator and argument layout.

    Examples:
        >>> a = torch.randn(4, 4)
        >>> calls = record_kernels(lambda: torch.relu(a @ a) + a @ a)  # the add is not kept
        >>> sorted((op.overloadpacket.__name__, n) for (op, _, _), n in calls.items())
        [('mm', 2), ('relu', 1)]
    """
    with _Recorder(names) as recorder:
        fn()
    return recorder.calls


class KernelReplay:
    """Runs recorded kernels again, each as often as counted, on random inputs of
    their recorded layouts (built once), under ``no_grad``.

    Examples:
        >>> a = torch.randn(8, 8)
        >>> replay = KernelReplay(record_kernels(lambda: a @ a @ a))
        >>> replay.calls, replay() is None
        (2, True)
    """

    def __init__(self, calls: Counter, cache: dict | None = None):
        cache = {} if cache is None else cache
        self.kernels = [(func, _build(args, cache), dict(_build(kwargs, cache)), count)
                        for (func, args, kwargs), count in calls.items()]
        self.calls = sum(count for *_, count in self.kernels)

    def __call__(self) -> None:
        with torch.no_grad():
            for func, args, kwargs, count in self.kernels:
                for _ in range(count):
                    func(*args, **kwargs)


def _loose(spec: Any) -> Any:
    """``spec`` without strides: a reference kernel cancels one of the same operator and
    shapes whatever its memory layout (a backbone's backward gets its gradients in
    another layout from a loss than from a matcher)."""
    if isinstance(spec, tuple) and spec and spec[0] == _TENSOR:
        return spec[:2] + spec[3:]
    if isinstance(spec, tuple):
        return tuple(_loose(v) for v in spec)
    return spec


def _without(calls: Counter, reference: Counter) -> Counter:
    """``calls`` less ``reference``, matched by operator, shapes and dtypes."""
    left = Counter()
    for key, count in reference.items():
        left[_loose(key)] += count
    extra = Counter()
    for key, count in calls.items():
        cancel = min(count, left[_loose(key)])
        left[_loose(key)] -= cancel
        if count > cancel:
            extra[key] = count - cancel
    return extra


def kernel_replays(fn: Callable[[], object], reference: Callable[[], object],
                   budget: int | None = None) -> dict[str, KernelReplay]:
    """For each tier of :data:`TIERS`, a replay of the essential kernels ``fn()`` runs
    beyond those of ``reference()`` (a multiset difference: the same operator on
    the same shapes cancels). The replays' inputs are random tensors, one per
    distinct layout, shared by the kernels and tiers that use it.

    Timing the replay next to ``reference`` gives the floor: ``1 + replay / reference``
    is the least ratio of ``fn`` to ``reference`` an implementation running these
    kernels one by one can reach.

    Args:
        fn: The call, e.g. a matcher's forward or training step.
        reference: The call whose kernels are taken away, e.g. its bare backbone.
        budget: Most bytes the inputs may take; ``None`` for no limit.

    Returns:
        ``{tier: replay}``.

    Raises:
        ReplayTooLarge: If the inputs would take more than ``budget`` bytes
            (nothing is allocated then).

    Examples:
        >>> a = torch.randn(64, 64)
        >>> replays = kernel_replays(lambda: torch.relu(a @ a) @ a, lambda: a @ a)
        >>> {tier: r.calls for tier, r in replays.items()}
        {'products': 1, 'products + norms': 2}
    """
    extra = _without(record_kernels(fn), record_kernels(reference))
    essential = set().union(*TIERS.values())
    kept = Counter({key: n for key, n in extra.items()
                    if key[0].overloadpacket.__name__ in essential})
    needed = replay_bytes(kept)
    if budget is not None and needed > budget:
        raise ReplayTooLarge(f'the kernel replay would need {needed / 2 ** 30:.1f} GiB of inputs, '
                             f'over its budget of {budget / 2 ** 30:.1f} GiB')
    cache: dict = {}
    return {tier: KernelReplay(Counter({key: n for key, n in kept.items()
                                        if key[0].overloadpacket.__name__ in names}), cache)
            for tier, names in TIERS.items()}
