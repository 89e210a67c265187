"""``corrkit benchmark CONFIG ...``: parameters, FLOPs, time, memory (``tools/benchmark.py``)."""
from __future__ import annotations

import argparse
import sys

from . import standalone

HELP = ('Benchmark matchers: parameters, GFLOPs, ms per pair, memory, stages, ratios to '
        'references.')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mmengine.config import DictAction

    from ..utils.acceleration import PRECISIONS
    parser.add_argument('configs', nargs='+', metavar='CONFIG', help='model names or configs')
    parser.add_argument('--out-dir', default='work_dirs/benchmark')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 8])
    parser.add_argument('--no-train', action='store_true', help='skip the training steps')
    parser.add_argument('--sweep-grid', action='store_true',
                        help="time the first config's refiner alone over --sweep-sides")
    parser.add_argument('--sweep-sides', type=int, nargs='+', default=[10, 15, 20, 25, 30])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--threads', type=int, help='torch.set_num_threads for the run')
    parser.add_argument('--precision', choices=list(PRECISIONS), default='fp32',
                        help='autocast type for every call, references included')
    parser.add_argument('--compile', action='store_true',
                        help='torch.compile each component (eager where that fails)')
    parser.add_argument('--sweep-resolutions', type=int, nargs='+', default=[], metavar='SIDE',
                        help='also run every config at these input sides (batch 1)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')


def run(args: argparse.Namespace) -> int:
    from ..apis import benchmark_configs
    from .common import user_errors
    with user_errors(args.debug):
        if args.device.startswith('cuda'):
            import torch
            if not torch.cuda.is_available():
                raise RuntimeError(f'--device {args.device} asked for, but CUDA is not '
                                   f'available here; use --device cpu')
        report = benchmark_configs(
            args.configs, args.out_dir, args.batch_sizes, not args.no_train,
            args.sweep_sides if args.sweep_grid else (), args.device, args.warmup,
            args.repeats, args.cfg_options, args.threads, args.precision, args.compile,
            args.sweep_resolutions)
    print(report['markdown'])
    print(f'written: {args.out_dir}/benchmark.md, benchmark.json'
          + (', refiner_scaling.png' if args.sweep_grid else '')
          + (', resolution_scaling.png' if args.sweep_resolutions else ''))
    return 0


def main(argv=None) -> int:
    """``tools/benchmark.py``."""
    return standalone(sys.modules[__name__], argv)
