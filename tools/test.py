"""Evaluate a matcher on a config's test split and print the PCK tables.

Usage:
    python tools/test.py CONFIG [--checkpoint CKPT] [--work-dir DIR]
                         [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm}]

Without a checkpoint, the model is evaluated as its config builds it (e.g. the
zero-shot baseline). Reports land in the work directory as pck_<threshold>.json.
"""
import argparse
import sys

from mmengine.config import DictAction

from corrkit.apis import evaluate
from corrkit.apis.runtime import LAUNCHERS
from corrkit.utils.cli import user_errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint',
                        help='weights to evaluate, or a training work dir (its newest checkpoint)')
    parser.add_argument('--work-dir', help='default: work_dirs/<config name>')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help=argparse.SUPPRESS)  # set by torch.distributed.launch
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        metrics = evaluate(args.config, args.checkpoint, args.work_dir, args.cfg_options,
                           args.launcher)
    for name, value in metrics.items():
        print(f'{name}: {value:.2f}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
