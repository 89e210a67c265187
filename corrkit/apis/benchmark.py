"""Benchmark configs side by side: the tables, JSON and scaling plot of ``tools/benchmark.py``."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any, Sequence

import torch

from ..analysis.benchmark import (STAGES, benchmark_model, count_flops, matmul_gflops,
                                  random_pairs, scaling_exponent, sweep_refiner, sweep_resolution,
                                  time_call)
from ..layers import AttentionMemoryError
from ..utils.acceleration import autocast, compile_forward, precision_dtype
from ..models.backbones import random_weights_options
from ..config import load_config
from ..utils.fileio import atomic_write
from ..utils.text import format_table
from .inference import init_matcher


def benchmark_configs(configs: Sequence[str | os.PathLike], out_dir: str | os.PathLike,
                      batch_sizes: Sequence[int] = (1, 8), train: bool = True,
                      sweep_sides: Sequence[int] = (), device: str = 'cpu', warmup: int = 2,
                      repeats: int = 10, cfg_options: dict[str, Any] | None = None,
                      threads: int | None = None, precision: str = 'fp32',
                      compile: bool = False, sweep_resolutions: Sequence[int] = ()) -> dict:
    """Measure every config in one run and write ``benchmark.json`` and ``benchmark.md``
    (rewritten after each config, so a run stopped part-way keeps what it measured).

    Models are built with random weights (speed does not depend on them, and
    nothing is downloaded). The references, a large fp32 matrix product, each
    model's backbone and its bare network (``Backbone.bare_network``: the tapped
    network alone, nothing kept or folded, in its fastest memory layout each
    round), are measured in the same rounds, so every figure can be read as a
    ratio (``forward_over_backbone``, ``forward_over_bare``: medians of per-round
    ratios). With ``sweep_sides`` the first config's refiner is also run
    alone on ``side⁴`` grids, and ``refiner_scaling.png`` shows time and memory
    against the number of matches on log-log axes with the fitted exponent.

    Args:
        configs: Config paths.
        out_dir: Where the JSON, markdown and plot go.
        batch_sizes: Pairs per call.
        train: Also time training steps.
        sweep_sides: Grid sides for the refiner sweep (e.g. ``range(10, 31, 5)``).
        device: ``'cpu'`` or ``'cuda'`` (timings synchronised).
        warmup: Untimed calls before each measurement.
        repeats: Timed calls per measurement.
        cfg_options: Overrides applied to every config.
        threads: ``torch.set_num_threads`` for the run (CPU).
        precision: ``'fp32'``, or ``'bf16'`` / ``'fp16'`` autocast around every call,
            the references included (the matmul reference then runs in that type).
        compile: Compile the forward of each component (backbone, correlation,
            refiner, head) with ``torch.compile``, eager where compiling fails;
            the bare backbone reference is then the compiled backbone.
        sweep_resolutions: Input sides (e.g. ``(240, 384, 560, 840)``): every config
            is also built at each ``side × side`` and a whole forward at batch 1
            (``tensor`` mode, the dense flow) is timed and its peak memory measured;
            ``resolution_scaling.png`` plots memory and time against the side, one
            line per config (a refused size is left out of the plot and named in
            the table).

    The references also give a floor (``floor_over_backbone``): the time of the
    backbone plus the FLOPs the model adds to it run at the matmul reference's
    throughput, as a ratio to the backbone's time. An implementation of the same
    arithmetic, in the same precision, that ran all of it as fast as one large
    matrix product would reach this ratio and no lower. Training steps get the same
    floor (``train_floor_over_backbone``), from the FLOPs of forward and backward.

    Returns:
        The report written to ``benchmark.json``, with the markdown under ``'markdown'``.
    """
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    dtype = precision_dtype(precision)  # validates before anything is built
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    report: dict = dict(
        device=torch.cuda.get_device_name(dev) if dev.type == 'cuda' else cpu_name(),
        threads=torch.get_num_threads(), torch=torch.__version__, precision=precision,
        compiled=compile, matmul_gflops=matmul_gflops(dev, dtype=dtype),
        models={})
    first = None
    for config in configs:
        cfg = load_config(config, cfg_options)
        options = {**random_weights_options(cfg), **(cfg_options or {})}
        model = init_matcher(config, device=device, cfg_options=options)
        if compile:
            for name in ('backbone', 'correlation', 'refiner', 'head'):
                compile_forward(getattr(model, name))
        try:
            result = benchmark_model(model, batch_sizes, train, warmup, repeats, precision,
                                     kernel_floor=not compile)
        except AttentionMemoryError as err:  # the paper's "out of memory" row, refused early
            report['models'][Path(config).stem] = dict(
                params=sum(p.numel() for p in model.parameters()), refused=str(err))
            _write(report, out)
            continue
        result['fused_refiner'] = precision == 'fp32' and not compile and fused_refiner(model, dev)
        images = model.backbone_input(random_pairs(model, 1, device=dev)[0])
        with torch.inference_mode(), autocast(precision, dev):
            flops = count_flops(lambda: model.backbone(images))
            bare = time_call(lambda: model.backbone(images), dev, warmup, repeats)
        result['backbone_gflops_per_s'] = flops / (bare.median_ms / 1000) / 1e9
        result['backbone_over_matmul'] = result['backbone_gflops_per_s'] / report['matmul_gflops']
        batch, entry = min(result['batches'].items())
        added = max(0.0, entry['gflops'] / batch - flops / 1e9)  # GFLOPs after the backbone
        result['added_gflops'] = added
        result['floor_over_backbone'] = 1 + added / report['matmul_gflops'] * 1000 / bare.median_ms
        for per_batch in result['batches'].values():
            if 'train_step' in per_batch:  # the same floor for a training step
                per_batch['train_floor_over_backbone'] = 1 + (
                    per_batch['train_added_gflops'] / report['matmul_gflops'] * 1000
                    / per_batch['backbone_train']['median_ms'])
        report['models'][Path(config).stem] = result
        first = first or model
        _write(report, out)  # what is measured survives a later config's failure
    if sweep_resolutions:
        report['resolution_sweep'] = {}
        for config in configs:
            options = {**random_weights_options(load_config(config, cfg_options)),
                       **(cfg_options or {})}
            report['resolution_sweep'][Path(config).stem] = sweep_resolution(
                lambda side: init_matcher(config, device=device, cfg_options={
                    **options, 'model.input_size': side}), sweep_resolutions, dev)
        plot_resolution_sweep(report['resolution_sweep'], out / 'resolution_scaling.png')
    if sweep_sides and first is not None:
        rows = sweep_refiner(first.refiner, sweep_sides, dev)
        report['sweep'] = dict(config=Path(configs[0]).stem, rows=rows,
                               time_exponent=scaling_exponent(rows, 'ms'),
                               memory_exponent=scaling_exponent(rows, 'peak_mb'))
        plot_sweep(report['sweep'], out / 'refiner_scaling.png')
    _write(report, out)
    return report


def fused_refiner(model: torch.nn.Module, device: torch.device) -> bool:
    """Whether ``model``'s refiner runs its inference forward on the fused CPU kernel
    (:mod:`corrkit.layers.fused`) on ``device`` in float32, building it if need be."""
    refiner = getattr(model, 'refiner', None)
    if not hasattr(refiner, 'inference_kernel'):
        return False
    with torch.inference_mode():
        probe = torch.zeros(1, refiner.in_channels, 1, device=device)
        return refiner.inference_kernel(probe) is not None


def _write(report: dict, out: Path) -> None:
    """``benchmark.json`` and ``benchmark.md`` as the report stands, each replaced
    atomically (a reader never sees half a file)."""
    report['markdown'] = markdown_report(report)
    atomic_write(json.dumps(report, indent=1).encode(), out / 'benchmark.json')
    atomic_write(report['markdown'].encode(), out / 'benchmark.md')


def cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo``, else what ``platform`` knows."""
    try:
        with open('/proc/cpuinfo') as handle:
            for line in handle:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    return format_table(header, rows, style='markdown', align=False)


def markdown_report(report: dict) -> str:
    """The benchmark as markdown: a summary table (one row per config), the stage
    breakdown, the references and, when run, the refiner sweep."""
    refused = {name: m for name, m in report['models'].items() if 'refused' in m}
    models = {name: m for name, m in report['models'].items() if 'refused' not in m}
    batches = sorted({int(b) for m in models.values() for b in m['batches']})
    header = ['config', 'params (M)', 'GFLOPs / pair']
    for b in batches:
        header += [f'ms / pair (b{b})', f'× backbone (b{b})', f'× bare network (b{b})']
    train = any('train_step' in e for m in models.values() for e in m['batches'].values())
    if train:
        header += [f'train ms / pair (b{batches[-1]})', f'train × backbone (b{batches[-1]})',
                   f'train floor (b{batches[-1]})']
    header += ['peak MB (fwd, b1)' if 1 in batches else 'peak MB (fwd)']
    rows = []
    for name, m in models.items():
        entries = {int(b): e for b, e in m['batches'].items()}
        first = entries[batches[0]]
        row = [f'`{name}`', f"{m['params'] / 1e6:.1f}", f"{first['gflops'] / batches[0]:.1f}"]
        for b in batches:
            e = entries.get(b)
            row += ([f"{e['forward']['median_ms']:.1f}", f"{e['forward_over_backbone']:.2f}",
                     f"{e['forward_over_bare']:.2f}" if 'forward_over_bare' in e else '']
                    if e else ['', '', ''])
        if train:
            e = entries[batches[-1]]
            row += ([f"{e['train_step']['median_ms']:.1f}", f"{e['train_over_backbone']:.2f}",
                     f"{e['train_floor_over_backbone']:.2f}"] if 'train_step' in e else [''] * 3)
        row.append(f"{first['forward_peak_mb']:.0f}")
        rows.append(row)
    for name, m in refused.items():
        rows.append([f'`{name}`', f"{m['params'] / 1e6:.1f}", 'refused: '
                     + m['refused'].split(' needs ')[-1].split(' for ')[0] + ' of scores']
                    + [''] * (len(header) - 3))
    precision = report.get('precision', 'fp32')
    parts = [f"Device: {report['device']}, {report['threads']} threads, torch "
             f"{report['torch']}; {precision}"
             f"{', compiled' if report.get('compiled') else ''}; {precision} matmul "
             f"{report['matmul_gflops']:.0f} GFLOP/s.", '']
    fused = [f'`{name}`' for name, m in models.items() if m.get('fused_refiner')]
    if fused:
        parts += [f"Refiner on the fused CPU kernel (inference): {', '.join(fused)}.", '']
    parts += [_table(header, rows), '']
    if not models:  # only refusals so far (the report is written after every config)
        return '\n'.join(parts)
    stages = list(STAGES)  # a keypoint matcher's stages follow the 4D ones
    for m in models.values():
        for e in m['batches'].values():
            stages += [s for s in e['stages_ms'] if s not in stages]
    stage_rows = [[f'`{name}`', f'b{b}'] + [_stage_cell(e, s) for s in stages]
                  for name, m in models.items() for b, e in sorted(
                      ((int(b), e) for b, e in m['batches'].items()))]
    parts += ['Milliseconds per pair, stage by stage (in brackets: the share of the '
              'backbone\'s time, round by round):', '',
              _table(['config', 'batch', *stages], stage_rows), '']
    ref_rows = [[f'`{name}`', f"{m['backbone_gflops_per_s']:.0f}",
                 f"{m['backbone_over_matmul']:.2f}", f"{m['added_gflops']:.1f}",
                 f"{m['floor_over_backbone']:.2f}"] for name, m in models.items()]
    parts += [f'Backbone throughput (batch {batches[0]}, forward) against the matmul, and '
              'the floor: the GFLOPs added after the backbone, at the matmul\'s '
              'throughput, as a ratio to the backbone\'s time:', '',
              _table(['config', 'backbone GFLOP/s', '× matmul', 'added GFLOPs / pair',
                      'floor × backbone'], ref_rows), '']
    floor_rows = [[f'`{name}`', f'b{b}', f"{e['forward_over_backbone']:.2f}"]
                  + [f'{v:.2f}' for v in e['kernel_floor_over_backbone'].values()]
                  + ([f"{e['train_over_backbone']:.2f}"]
                     + [f'{v:.2f}' for v in e['train_kernel_floor_over_backbone'].values()]
                     if e.get('train_kernel_floor_over_backbone') else [''] * 3)
                  for name, m in models.items() for b, e in sorted(
                      ((int(b), e) for b, e in m['batches'].items()))
                  if e.get('kernel_floor_over_backbone')]
    if floor_rows:
        parts += ['Kernel floors, timed in the same rounds as the backbone: the matrix '
                  'products (and the normalisations and activations) the model adds to '
                  'the bare backbone, each replayed alone, as `1 + replay / backbone`. '
                  'Running those kernels one by one, nothing else, reaches these ratios '
                  'and no lower' + (
                      ' (the forward of a refiner on the fused CPU kernel does the same '
                      'arithmetic in fewer, larger steps than these PyTorch kernels, and can '
                      'go below them)' if fused else '') + ':', '',
                  _table(['config', 'batch', '× backbone', 'floor: products',
                          'floor: + norms', 'train × backbone', 'train floor: products',
                          'train floor: + norms'], floor_rows), '']
    skipped = []
    for name, m in models.items():
        for b, e in sorted(m['batches'].items(), key=lambda item: int(item[0])):
            for key, what in (('kernel_floor_skipped', ''),
                              ('train_kernel_floor_skipped', ' training step')):
                if key in e:
                    skipped.append(f'- `{name}` b{b}{what}: {e[key]}')
    if skipped:
        parts += ['Kernel floors not measured:', '', *skipped, '']
    if 'resolution_sweep' in report:
        res_rows = [[f'`{name}`', str(r['side'])] + (
            ['refused', '', ''] if 'refused' in r else
            [' × '.join(map(str, r['grid'])), f"{r['ms']:.0f}", f"{r['peak_mb']:.0f}"])
            for name, rows in report['resolution_sweep'].items() for r in rows]
        parts += ['A whole forward (the dense flow) at batch 1 against the input side:', '',
                  _table(['config', 'side', 'grid', 'ms', 'peak MB'], res_rows), '']
    if 'sweep' in report:
        sweep = report['sweep']
        parts += [f"Refiner of `{sweep['config']}` alone, batch 1: time ∝ matches^"
                  f"{sweep['time_exponent']:.2f}, memory ∝ matches^"
                  f"{sweep['memory_exponent']:.2f}.", '',
                  _table(['grid', 'matches', 'ms', 'peak MB'],
                         [[f"{r['side']}⁴", f"{r['matches']}", f"{r['ms']:.1f}",
                           f"{r['peak_mb']:.0f}"] for r in sweep['rows']]), '']
    return '\n'.join(parts)


def _stage_cell(entry: dict, stage: str) -> str:
    """``ms (share %)`` of one stage, ``ms`` for the backbone, empty when not run."""
    if stage not in entry['stages_ms']:
        return ''
    share = entry.get('stages_over_backbone', {}).get(stage)
    return f"{entry['stages_ms'][stage]:.1f}" + (f' ({100 * share:.0f} %)' if share else '')


def plot_sweep(sweep: dict, path: str | os.PathLike) -> None:
    """Log-log plot of the refiner's time and memory against the number of matches."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = sweep['rows']
    matches = [r['matches'] for r in rows]
    fig, axis = plt.subplots(figsize=(5.5, 4), constrained_layout=True)
    axis.loglog(matches, [r['ms'] for r in rows], 'o-',
                label=f"time (exponent {sweep['time_exponent']:.2f})")
    memory = [(m, r['peak_mb']) for m, r in zip(matches, rows) if r['peak_mb'] > 0]
    if memory:
        twin = axis.twinx()
        twin.loglog(*zip(*memory), 's--', color='tab:orange',
                    label=f"peak memory (exponent {sweep['memory_exponent']:.2f})")
        twin.set_ylabel('peak memory (MB)')
        twin.legend(loc='lower right', fontsize='small')
    axis.set(xlabel='matches (side⁴)', ylabel='ms per pair',
             title=f"refiner of {sweep['config']}")
    axis.legend(loc='upper left', fontsize='small')
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_resolution_sweep(sweep: dict[str, list[dict]], path: str | os.PathLike) -> None:
    """Peak memory and time of a forward against the input side, one line per config."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (memory, timing) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for name, rows in sweep.items():
        done = [r for r in rows if 'refused' not in r]
        sides = [r['side'] for r in done]
        memory.semilogy(sides, [max(r['peak_mb'], 1e-3) for r in done], 'o-', label=name)
        timing.semilogy(sides, [r['ms'] for r in done], 'o-', label=name)
    memory.set(xlabel='input side (px)', ylabel='peak memory of a forward (MB)',
               title='memory, batch 1')
    timing.set(xlabel='input side (px)', ylabel='ms per pair', title='time, batch 1')
    memory.legend(fontsize='small')
    fig.savefig(path, dpi=120)
    plt.close(fig)
