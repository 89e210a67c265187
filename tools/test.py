"""Evaluate a matcher on a config's test split and print the PCK tables.

Usage:
    python tools/test.py CONFIG [--checkpoint CKPT] [--work-dir DIR]
                         [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm}]

Without a checkpoint, the model is evaluated as its config builds it (e.g. the
zero-shot baseline). Reports land in the work directory as pck_<threshold>.json.
"""
import argparse
import sys

from corrkit.apis import evaluate
from corrkit.apis.runtime import LAUNCHERS
from corrkit.utils.allocator import tune_cpu_allocator
from corrkit.utils.cli import add_runner_arguments, user_errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runner_arguments(parser, LAUNCHERS)
    parser.add_argument('--checkpoint',
                        help='weights to evaluate, or a training work dir (its newest checkpoint)')
    args = parser.parse_args(argv)
    tune_cpu_allocator()  # reuse large CPU blocks (CORRKIT_TUNE_MALLOC=0: off)
    with user_errors(args.debug):
        metrics = evaluate(args.config, args.checkpoint, args.work_dir, args.cfg_options,
                           args.launcher)
    for name, value in metrics.items():
        print(f'{name}: {value:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
