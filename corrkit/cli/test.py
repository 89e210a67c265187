"""``corrkit test CONFIG``: evaluate a matcher on its config's test split (``tools/test.py``)."""
from __future__ import annotations

import argparse
import sys

from . import standalone

HELP = "Evaluate a matcher on its config's test split and print the PCK tables."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..apis.runtime import LAUNCHERS
    from .common import add_runner_arguments
    add_runner_arguments(parser, LAUNCHERS)
    parser.add_argument('--checkpoint',
                        help="weights to evaluate, a training work dir (its newest checkpoint), "
                             "or 'auto' (the model index's published weights)")


def run(args: argparse.Namespace) -> int:
    from ..apis import evaluate
    from ..apis.allocator import tune_cpu_allocator
    from .common import user_errors
    tune_cpu_allocator()  # reuse large CPU blocks (CORRKIT_TUNE_MALLOC=0: off)
    with user_errors(args.debug):
        metrics = evaluate(args.config, args.checkpoint, args.work_dir, args.cfg_options,
                           args.launcher)
    for name, value in metrics.items():
        print(f'{name}: {value:.2f}')
    return 0


def main(argv=None) -> int:
    """``tools/test.py``."""
    return standalone(sys.modules[__name__], argv)
