"""``corrkit train CONFIG``: train a matcher with mmengine's Runner (``tools/train.py``)."""
from __future__ import annotations

import argparse
import sys

from . import standalone

HELP = 'Train a matcher from a model name or config with mmengine\'s Runner.'


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..apis.runtime import LAUNCHERS
    from .common import add_runner_arguments
    add_runner_arguments(parser, LAUNCHERS)
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                        help='resume from CKPT, or from the newest checkpoint of the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed precision (GPU)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms only (randomness.deterministic=True)')


def run(args: argparse.Namespace) -> int:
    from mmengine.dist import is_main_process

    from ..apis.train import train, training_summary
    from ..apis.allocator import tune_cpu_allocator
    from .common import user_errors
    tune_cpu_allocator()  # reuse large CPU blocks (CORRKIT_TUNE_MALLOC=0: off)
    with user_errors(args.debug):
        options = dict(args.cfg_options, **({'randomness.deterministic': True}
                                            if args.deterministic else {}))
        runner = train(args.config, args.work_dir, options, args.resume, args.amp,
                       args.launcher)
    print(f'work dir: {runner.work_dir}')
    if is_main_process():  # best checkpoint, its validation score, what it measured, test command
        try:
            summary = training_summary(runner, args.config, options)
        except Exception as err:  # the run is done and saved: a summary never fails it
            summary = [f'(no training summary: {type(err).__name__}: {err})']
        for line in summary:
            print(line)
    return 0


def main(argv=None) -> int:
    """``tools/train.py``."""
    return standalone(sys.modules[__name__], argv)
