"""``corrkit match-pairs PAIRS``: match a list of pairs, one result per pair, resumable."""
from __future__ import annotations

import argparse
import sys

from . import standalone
from .match import DEFAULT_MODEL, add_model_arguments

HELP = ('Match many pairs (a CSV or JSON list, or two folders paired by file name): one JSON '
        'and CSV per pair, resumable, bad pairs reported and skipped.')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('pairs', nargs='+', metavar='PAIRS',
                        help='pairs.csv (source,target[,kps]), pairs.json, or SRC_DIR TRG_DIR')
    add_model_arguments(parser)
    parser.add_argument('--out-dir', default='work_dirs/match_pairs')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def run(args: argparse.Namespace) -> int:
    from ..apis import init_matcher
    from ..apis.batch import match_pairs, read_pairs
    from ..apis.allocator import tune_cpu_allocator
    from .common import user_errors
    tune_cpu_allocator()  # as the other tools (CORRKIT_TUNE_MALLOC=0: off)

    def report_error(pair_id: str, message: str) -> None:
        print(f'\nerror: pair {pair_id}: {message} (skipped)', file=sys.stderr)

    with user_errors(args.debug):
        pairs = read_pairs(args.pairs)
        model = init_matcher(args.config or args.model or DEFAULT_MODEL, args.checkpoint,
                             args.device, args.cfg_options)
        report = match_pairs(model, pairs, args.out_dir, args.precision,
                             not args.no_progress, report_error)
    print(f'{len(report.matched)} matched, {len(report.skipped)} already done, '
          f'{len(report.failed)} failed; results in {args.out_dir}')
    for pair_id in report.replaced:
        print(f'replaced: {pair_id} (its earlier result came from other inputs)')
    for pair_id, message in report.failed.items():
        print(f'failed: {pair_id}: {message}')
    return 1 if report.failed else 0


def main(argv=None) -> int:
    """This command alone, as a script would run it."""
    return standalone(sys.modules[__name__], argv)
