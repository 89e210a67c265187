"""``corrkit match SRC TRG``: match two images, draw the matches, optionally write the viewer."""
from __future__ import annotations

import argparse
import sys

from . import standalone

HELP = ('Match two images (without them, the bundled astronaut and Grace Hopper portraits): '
        'matches.json, matches.png, warp.png and, with --html, the interactive viewer '
        'matches.html.')

#: The model ``corrkit match`` uses without --model or --config.
DEFAULT_MODEL = 'zeroshot_mobilenetv2'


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """--model / --config, --checkpoint, --device, --precision, --cfg-options, --debug."""
    from mmengine.config import DictAction

    from ..utils.acceleration import PRECISIONS
    which = parser.add_mutually_exclusive_group()
    which.add_argument('--model', help=f'a model name (corrkit list); default {DEFAULT_MODEL}')
    which.add_argument('--config', help='a config file instead of a name')
    parser.add_argument('--checkpoint', help="weights file, training work dir, or 'auto' "
                                             "(the model index's published weights)")
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--precision', choices=list(PRECISIONS), default='fp32',
                        help='run the network under autocast in this type')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        metavar='KEY=VALUE')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('images', nargs='*', metavar='IMAGE',
                        help='source and target image (none: the bundled pair)')
    add_model_arguments(parser)
    parser.add_argument('--kps', help='source keypoints, JSON [[x, y], ...] or CSV x,y '
                                      '(default: an 8 x 8 grid)')
    parser.add_argument('--out-dir', default='work_dirs/match')
    parser.add_argument('--html', action='store_true',
                        help='also write matches.html, the interactive viewer')


def run(args: argparse.Namespace) -> int:
    from ..apis.demo import run_demo
    from ..apis.points import read_keypoints
    from ..apis.allocator import tune_cpu_allocator
    from .common import user_errors
    if len(args.images) not in (0, 2):
        print(f'error: give two images (source and target) or none for the bundled pair, '
              f'got {len(args.images)}', file=sys.stderr)
        return 2
    tune_cpu_allocator()  # reuse large CPU blocks (CORRKIT_TUNE_MALLOC=0: off)
    with user_errors(args.debug):
        kps = read_keypoints(args.kps) if args.kps else None
        if args.images:
            src, trg = args.images
        else:
            from ..utils.sample_data import ASTRONAUT_KPS, sample_pair
            (src, trg), kps = sample_pair(), ASTRONAUT_KPS if kps is None else kps
        paths = run_demo(src, trg, args.config or args.model or DEFAULT_MODEL,
                         args.checkpoint, kps, args.out_dir, args.cfg_options, args.device,
                         args.precision, args.html)
    for kind, path in paths.items():
        print(f'{kind}: {path}')
    return 0


def main(argv=None) -> int:
    """This command alone, as a script would run it."""
    return standalone(sys.modules[__name__], argv)
