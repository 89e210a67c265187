"""Benchmark matchers: parameters, GFLOPs, ms per pair, memory, stages, ratios to references.

Usage:
    python tools/benchmark.py CONFIG [CONFIG ...] [--out-dir work_dirs/benchmark]
        [--batch-sizes 1 8] [--no-train] [--sweep-grid] [--sweep-sides 10 15 20 25 30]
        [--device cpu|cuda] [--warmup 2] [--repeats 10] [--threads N]
        [--precision fp32|bf16|fp16] [--compile] [--sweep-resolutions 240 384 560 840]
        [--cfg-options KEY=VALUE ...] [--debug]

Models are built with random weights. Writes benchmark.md, benchmark.json and, with
--sweep-grid, refiner_scaling.png (the first config's refiner alone on side^4 grids);
with --sweep-resolutions, resolution_scaling.png (every config's whole forward, batch 1,
at each input side: peak memory and time). Keypoint matchers are timed stage by stage
as backbone, similarity, head (20 keypoints) and dense flow; a model with nothing to
train gets no training row.
"""
import argparse
import sys

from mmengine.config import DictAction

from corrkit.apis import benchmark_configs
from corrkit.utils.acceleration import PRECISIONS
from corrkit.utils.allocator import tune_cpu_allocator
from corrkit.utils.cli import user_errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('configs', nargs='+')
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
    args = parser.parse_args(argv)
    tune_cpu_allocator()  # reuse large CPU blocks (CORRKIT_TUNE_MALLOC=0: off)
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
          + (', refiner_scaling.png' if args.sweep_grid else ''))
    return 0


if __name__ == '__main__':
    sys.exit(main())
