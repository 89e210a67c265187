"""Match two images with a corrkit matcher and draw the matches.

Usage:
    python tools/demo.py [SRC TRG] --config CONFIG [--checkpoint CKPT] [--kps FILE]
                         [--out-dir DIR] [--device cpu|cuda] [--precision fp32|bf16|fp16]
                         [--html] [--cfg-options KEY=VALUE ...]

Without SRC and TRG, matches the bundled portraits (astronaut → Grace Hopper).
"""
import argparse
import sys

from mmengine.config import DictAction

from corrkit.apis.demo import read_keypoints, run_demo
from corrkit.utils.acceleration import PRECISIONS
from corrkit.utils.allocator import tune_cpu_allocator
from corrkit.utils.cli import user_errors
from corrkit.utils.sample_data import ASTRONAUT_KPS, sample_pair


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('images', nargs='*', metavar='IMAGE', help='source and target image')
    parser.add_argument('--config', default='configs/zeroshot_mobilenetv2.py')
    parser.add_argument('--checkpoint')
    parser.add_argument('--kps', help='source keypoints, JSON [[x, y], ...] or CSV x,y')
    parser.add_argument('--out-dir', default='work_dirs/demo')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--precision', choices=list(PRECISIONS), default='fp32',
                        help='run the network under autocast in this type')
    parser.add_argument('--html', action='store_true',
                        help='also write matches.html, the interactive viewer')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    args = parser.parse_args(argv)
    tune_cpu_allocator()  # reuse large CPU blocks (CORRKIT_TUNE_MALLOC=0: off)
    if len(args.images) not in (0, 2):
        parser.error('give two images (source and target) or none for the bundled pair')
    with user_errors(args.debug):
        if args.images:
            src, trg = args.images
            kps = read_keypoints(args.kps) if args.kps else None
        else:
            (src, trg), kps = sample_pair(), (read_keypoints(args.kps) if args.kps
                                              else ASTRONAUT_KPS)
        paths = run_demo(src, trg, args.config, args.checkpoint, kps, args.out_dir,
                         args.cfg_options, args.device, args.precision, args.html)
    for kind, path in paths.items():
        print(f'{kind}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
