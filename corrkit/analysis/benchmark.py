"""Speed, memory and FLOPs of matchers, stage by stage, with in-run references.

Every time is the median of ``repeats`` calls after ``warmup`` calls, with the
interquartile range as its spread; CUDA work is synchronised before a clock is
read. Every figure is also reported against two references measured in the same
run on the same machine: the bare backbone on the same images (forward, or
forward + backward for training) and a large fp32 matrix product (the machine's
attainable throughput). Ratios within one run are what to compare across
machines; absolute milliseconds are not.
"""
from __future__ import annotations

import copy
import math
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from ..structures import PairDataSample
from ..utils.acceleration import autocast
from .kernel_floor import KernelReplay, ReplayTooLarge, default_replay_budget, kernel_replays

STAGES = ('backbone', 'correlation', 'refiner', 'head', 'transfer')


@dataclass
class Timing:
    """Milliseconds per call: median and interquartile range over ``runs`` calls."""

    median_ms: float
    q1_ms: float
    q3_ms: float
    runs: int


def synchronize(device: torch.device) -> None:
    """Wait for queued work on ``device`` (a no-op on CPU)."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


def time_call(fn: Callable[[], object], device: torch.device, warmup: int = 2,
              repeats: int = 10) -> Timing:
    """Median and quartiles of the wall time of ``fn()``, after ``warmup`` calls.

    Examples:
        >>> time_call(lambda: sum(range(100)), torch.device('cpu'), 1, 5).runs
        5
    """
    for _ in range(warmup):
        fn()
    synchronize(device)
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    quartiles = statistics.quantiles(times, n=4) if len(times) > 1 else times * 3
    return Timing(statistics.median(times), quartiles[0], quartiles[2], len(times))


def time_rounds(calls: dict[str, Callable[[], object]], device: torch.device,
                warmup: int = 2, repeats: int = 10) -> dict[str, list[float]]:
    """Time several calls round-robin, so that every figure shares the machine's moods.

    Each round times every call once, in order. A slow spell of a shared
    machine then slows the calls of the same rounds alike, and a ratio taken
    round by round (:func:`round_ratios`) is far steadier than a ratio of two
    medians measured minutes apart.

    Args:
        calls: The calls, by name.
        device: Where they run (synchronised before each clock read).
        warmup: Untimed calls of each before the first round.
        repeats: Rounds.

    Returns:
        Each call's milliseconds, round by round.
    """
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(max(1, repeats)):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            synchronize(device)
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def round_timings(times: dict[str, list[float]]) -> dict[str, Timing]:
    """The median and quartiles of each call's rounds."""
    timings = {}
    for name, values in times.items():
        quartiles = statistics.quantiles(values, n=4) if len(values) > 1 else values * 3
        timings[name] = Timing(statistics.median(values), quartiles[0], quartiles[2],
                               len(values))
    return timings


def round_ratios(times: dict[str, list[float]], reference: str | Sequence[str]
                 ) -> dict[str, float]:
    """The median over rounds of each call's time over the reference's.

    Args:
        times: From :func:`time_rounds`.
        reference: A call's name, or several names: then each round's reference
            is the fastest of them (one network in several memory layouts, say).
    """
    names = [reference] if isinstance(reference, str) else list(reference)
    rounds = [min(times[name][i] for name in names) for i in range(len(times[names[0]]))]
    return {name: statistics.median(v / r for v, r in zip(values, rounds))
            for name, values in times.items()}


def time_interleaved(calls: dict[str, Callable[[], object]], device: torch.device,
                     warmup: int = 2, repeats: int = 10,
                     reference: str | None = None) -> tuple[dict[str, Timing], dict[str, float]]:
    """:func:`time_rounds`, summarised: each call's timing and, with a reference, the
    median of its per-round ratios to it.

    Examples:
        >>> timings, ratios = time_interleaved({'a': lambda: sum(range(100)),
        ...                                     'b': lambda: sum(range(200))},
        ...                                    torch.device('cpu'), 1, 5, reference='a')
        >>> timings['b'].runs, ratios['a']
        (5, 1.0)
    """
    times = time_rounds(calls, device, warmup, repeats)
    return round_timings(times), {} if reference is None else round_ratios(times, reference)


def bare_network_calls(backbone: nn.Module, images: Tensor) -> dict[str, Callable[[], object]]:
    """The backbone's bare network (:meth:`~corrkit.models.base.Backbone.bare_network`) on
    the same images, once per memory layout (copies of it), for the fastest-layout reference."""
    bare = backbone.bare_network()
    calls = {}
    for layout, fmt in (('channels_last', torch.channels_last),
                        ('contiguous', torch.contiguous_format)):
        net = copy.deepcopy(bare).to(memory_format=fmt)
        net.eval()
        x = images.contiguous(memory_format=fmt)
        calls[f'bare network ({layout})'] = lambda net=net, x=x: net(x)
    return calls


def peak_memory(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes of tensors ``fn()`` allocates and holds at once.

    CUDA: growth of ``max_memory_allocated``. CPU: the allocations and frees that
    ``torch.profiler`` records (``profile_memory=True``), summed in time order,
    which counts memory freed inside the call once it is reused. The resident set
    size would not: after a first large call the process keeps the pages, and
    later calls appear to need nothing.
    """
    if device.type == 'cuda':
        synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        synchronize(device)
        return max(0, torch.cuda.max_memory_allocated(device) - base)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == '[memory]' and e.device_type() == DeviceType.CPU)
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return peak


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of ``fn()`` as ``torch.utils.flop_counter`` counts them (2 per multiply-add)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def matmul_gflops(device: torch.device, size: int = 2048, repeats: int = 10,
                  dtype: torch.dtype = torch.float32) -> float:
    """Attained GFLOP/s of a ``size × size`` matrix product: the throughput reference."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    timing = time_call(lambda: a @ b, device, warmup=2, repeats=repeats)
    return 2 * size ** 3 / (timing.median_ms / 1000) / 1e9


def random_pairs(model: nn.Module, batch: int, num_keypoints: int = 20,
                 device: torch.device | str = 'cpu',
                 seed: int = 0) -> tuple[Tensor, list[PairDataSample]]:
    """Random image pairs at the model's input size with random keypoints in pixels."""
    generator = torch.Generator().manual_seed(seed)
    h, w = model.input_size
    inputs = torch.randn(batch, 2, 3, h, w, generator=generator)
    scale = torch.tensor([w - 1.0, h - 1.0])
    samples = [PairDataSample(src_kps=torch.rand(num_keypoints, 2, generator=generator) * scale,
                              trg_kps=torch.rand(num_keypoints, 2, generator=generator) * scale)
               for _ in range(batch)]
    return inputs.to(device), samples


def stage_calls(model: nn.Module, inputs: Tensor) -> dict[str, Callable[[], object]]:
    """One call per pipeline stage, each fed the previous stage's real output.

    ``backbone`` is the bare backbone on the images as the matcher hands them
    over, the reference every figure is compared with; the stages after
    encoding are the matcher's own (:meth:`~corrkit.models.base.Matcher.timed_stages`:
    correlation, refiner, head and the transfer of 20 keypoints per pair for a
    ``CorrelationMatcher``; similarity and head for 20 keypoints per pair and
    the dense flow for a ``KeypointMatcher``).
    """
    images = model.backbone_input(inputs)
    src, trg = model.encode_pairs(inputs, mirrored=model.mirrors_source)
    size = inputs.shape[-2:]
    scale = torch.tensor([size[1] - 1.0, size[0] - 1.0], device=inputs.device)
    kps = torch.rand(inputs.shape[0], 20, 2, device=inputs.device) * scale
    return {'backbone': lambda: model.backbone(images), **model.timed_stages(src, kps, trg)}


def benchmark_model(model: nn.Module, batch_sizes: Sequence[int] = (1, 8), train: bool = True,
                    warmup: int = 2, repeats: int = 10, precision: str = 'fp32',
                    kernel_floor: bool = True) -> dict:
    """Parameters, FLOPs, time, memory and stage breakdown of one matcher.

    Args:
        model: A :class:`~corrkit.models.matchers.CorrelationMatcher` or a
            :class:`~corrkit.models.matchers.KeypointMatcher`.
        batch_sizes: Pairs per call.
        train: Also time a training step (forward + loss + backward, every
            parameter that requires gradients included) and the bare backbone's
            forward + backward; skipped for a model with nothing to train.
        warmup: Untimed calls before each measurement.
        repeats: Timed calls per measurement.
        precision: ``'fp32'``, or ``'bf16'`` / ``'fp16'`` autocast around every
            call, the backbone reference's included.
        kernel_floor: Also time the kernel floors (:mod:`corrkit.analysis.kernel_floor`)
            in the same rounds: the essential kernels the forward (the training
            step) adds to the bare backbone's (its forward + backward), replayed
            alone. Off for a compiled model, whose kernels are not aten's.

    Returns:
        ``{'params', 'input_size', 'batches': {batch: {...}}}``; per batch the
        GFLOPs of a forward, ms per pair for the full forward, the bare backbone and
        every stage, the ratios of the forward and of each stage to the backbone
        (round by round), the kernel floors, peak memory, and with
        ``train`` the same for a training step, with the GFLOPs per pair it adds
        to the backbone's forward + backward.
    """
    device = next(model.parameters()).device
    result = dict(params=sum(p.numel() for p in model.parameters()),
                  input_size=list(model.input_size), batches={})
    for batch in batch_sizes:
        inputs, samples = random_pairs(model, batch, device=device)
        entry: dict = {}
        model.eval()
        bare = bare_network_calls(model.backbone, model.backbone_input(inputs))
        with torch.inference_mode(), autocast(precision, device):
            model(inputs)  # untimed: one-off work (a folded backbone's copy) is not measured
            entry['forward_peak_mb'] = peak_memory(lambda: model(inputs), device) / 2 ** 20
            entry['gflops'] = count_flops(lambda: model(inputs)) / 1e9
            images = model.backbone_input(inputs)
            # the headline: the forward against the bare network, in rounds of their own
            entry.update(_against_bare(lambda: model(inputs), lambda: model.backbone(images),
                                       bare, device, warmup, repeats, batch))
            del bare  # the copies weigh on nothing after
            floors, skipped = (_floors(lambda: model(inputs), lambda: model.backbone(images),
                                       device) if kernel_floor else ({}, None))
            if skipped:
                entry['kernel_floor_skipped'] = skipped
            calls = dict(stage_calls(model, inputs), forward=lambda: model(inputs), **floors)
            times = time_rounds(calls, device, warmup, repeats)
        timings, ratios = round_timings(times), round_ratios(times, 'backbone')
        forward = timings.pop('forward')
        entry['kernel_floor_over_backbone'] = _floor_ratios(floors, timings, ratios)
        entry['stages_ms'] = {k: v.median_ms / batch for k, v in timings.items()}
        entry['stages_over_backbone'] = {k: ratios[k] for k in timings if k != 'backbone'}
        entry['forward'] = _per_pair(forward, batch)
        entry['backbone'] = _per_pair(timings['backbone'], batch)
        entry['forward_over_backbone'] = ratios['forward']
        if train and any(p.requires_grad for p in model.parameters()):  # a zero-shot model: none
            with autocast(precision, device):
                entry.update(_train_step(model, inputs, samples, device, warmup, repeats,
                                         kernel_floor))
        result['batches'][batch] = entry
    model.eval()
    return result


def _against_bare(forward: Callable[[], object], backbone: Callable[[], object],
                  bare: dict[str, Callable[[], object]], device: torch.device, warmup: int,
                  repeats: int, batch: int) -> dict:
    """The forward and the backbone against the bare network in its fastest memory layout
    (the lower median), the median of per-round ratios, in rounds of these calls alone:
    the stage breakdown's intermediates and replays do not weigh on them."""
    times = time_rounds({'forward': forward, 'backbone': backbone, **bare}, device, warmup,
                        repeats)
    fastest = min(bare, key=lambda name: statistics.median(times[name]))
    ratios = round_ratios(times, fastest)
    return {'bare_network': _per_pair(round_timings({'bare': times[fastest]})['bare'], batch),
            'bare_network_layout': fastest.split('(')[-1].rstrip(')'),
            'forward_over_bare': ratios['forward'], 'backbone_over_bare': ratios['backbone']}


def _per_pair(timing: Timing, batch: int) -> dict:
    return {k: (v / batch if k.endswith('_ms') else v) for k, v in asdict(timing).items()}


def _train_step(model: nn.Module, inputs: Tensor, samples: list, device: torch.device,
                warmup: int, repeats: int, kernel_floor: bool = True) -> dict:
    """Time a training step and the bare backbone's forward + backward (its forward alone
    when it is frozen: then no backward runs through it in the step either)."""
    model.train()
    images = model.backbone_input(inputs)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        loss = sum(model(inputs, samples, mode='loss').values())
        loss.backward()

    frozen = not any(p.requires_grad for p in model.backbone.parameters())

    def backbone_step() -> None:
        model.zero_grad(set_to_none=True)
        if frozen:  # an adapter's training: no backward runs through the backbone
            with torch.no_grad():
                model.backbone(images)
            return
        sum(f.mean() for f in model.backbone(images)).backward()

    peak = peak_memory(step, device) / 2 ** 20
    added = count_flops(step) - count_flops(backbone_step)  # forward and backward
    floors, skipped = _floors(step, backbone_step, device) if kernel_floor else ({}, None)
    timings, ratios = time_interleaved({'step': step, 'backbone': backbone_step, **floors},
                                       device, warmup, repeats, 'backbone')
    model.zero_grad(set_to_none=True)
    batch = inputs.shape[0]
    return {'train_step': _per_pair(timings['step'], batch),
            'backbone_train': _per_pair(timings['backbone'], batch),
            'train_over_backbone': ratios['step'], 'train_peak_mb': peak,
            'train_added_gflops': max(0, added) / batch / 1e9,
            'train_kernel_floor_over_backbone': _floor_ratios(floors, timings, ratios),
            **({'train_kernel_floor_skipped': skipped} if skipped else {})}


def _floors(fn: Callable[[], object], reference: Callable[[], object], device: torch.device
            ) -> tuple[dict[str, KernelReplay], str | None]:
    """The kernel replays as calls to time next to the others (``floor: <tier>``), and
    ``None``; or none and the reason, when their inputs would take more than a quarter
    of the device's memory (:func:`~corrkit.analysis.kernel_floor.default_replay_budget`).
    """
    try:
        replays = kernel_replays(fn, reference, budget=default_replay_budget(device))
    except ReplayTooLarge as err:
        return {}, str(err)
    return {f'floor: {tier}': replay for tier, replay in replays.items()}, None


def _floor_ratios(floors: dict, timings: dict, ratios: dict) -> dict[str, float]:
    """``1 + replay / backbone`` per tier, round by round; the replays' timings are
    taken out of ``timings``."""
    for name in floors:
        timings.pop(name)
    return {name.removeprefix('floor: '): 1 + ratios[name] for name in floors}


def sweep_refiner(refiner: nn.Module, sides: Sequence[int], device: torch.device,
                  warmup: int = 1, repeats: int = 3) -> list[dict]:
    """Time and memory of the refiner alone on ``side⁴`` match grids, batch 1.

    Returns:
        One ``{'side', 'matches', 'ms', 'peak_mb'}`` per side.
    """
    refiner.eval()
    rows = []
    with torch.inference_mode():
        for side in sides:
            corr = torch.rand(1, refiner.in_channels, side, side, side, side, device=device)
            peak = peak_memory(lambda: refiner(corr), device) / 2 ** 20
            timing = time_call(lambda: refiner(corr), device, warmup, repeats)
            rows.append(dict(side=side, matches=side ** 4, ms=timing.median_ms, peak_mb=peak))
    return rows


def scaling_exponent(rows: Sequence[dict], key: str = 'ms') -> float:
    """Least-squares slope of ``log(key)`` against ``log(matches)`` (1.0 = linear).

    Examples:
        >>> scaling_exponent([dict(matches=10, ms=2.0), dict(matches=100, ms=20.0)])
        1.0
    """
    points = [(math.log(r['matches']), math.log(r[key])) for r in rows if r[key] > 0]
    if len(points) < 2:
        return float('nan')
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    return (sum((x - mx) * (y - my) for x, y in points)
            / sum((x - mx) ** 2 for x, _ in points))


def sweep_resolution(build: Callable[[int], nn.Module], sides: Sequence[int],
                     device: torch.device, warmup: int = 1, repeats: int = 3) -> list[dict]:
    """Time and peak memory of a whole forward (``tensor`` mode, batch 1) per input side.

    Args:
        build: Returns the matcher built at input size ``side × side``.
        sides: Input sides in pixels.
        device: Where the model runs.
        warmup: Untimed calls per side.
        repeats: Timed calls per side.

    Returns:
        One ``{'side', 'grid', 'ms', 'peak_mb'}`` per side (``grid``: the finest
        feature map's ``[h, w]``), or ``{'side', 'refused'}`` where the model
        refuses the size (:class:`~corrkit.errors.AttentionMemoryError`).
    """
    from ..layers import AttentionMemoryError
    rows = []
    for side in sides:
        try:
            model = build(side).eval()
            inputs, _ = random_pairs(model, 1, device=device)
            with torch.inference_mode():
                grid = max(model.feature_sizes(*model.input_size), key=lambda hw: hw[0] * hw[1])
                peak = peak_memory(lambda: model(inputs), device) / 2 ** 20
                timing = time_call(lambda: model(inputs), device, warmup, repeats)
        except AttentionMemoryError as err:
            rows.append(dict(side=side, refused=str(err)))
            continue
        rows.append(dict(side=side, grid=list(grid), ms=timing.median_ms, peak_mb=peak))
    return rows
