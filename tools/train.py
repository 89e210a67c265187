"""Train a matcher from a config with mmengine's Runner.

Usage:
    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...]
                          [--resume [CKPT]] [--amp] [--launcher {none,pytorch,slurm}]

--resume alone continues from the newest checkpoint in the work directory;
--resume CKPT from that checkpoint. Distributed: tools/dist_train.sh N CONFIG.
"""
import argparse
import sys

from mmengine.config import DictAction

from corrkit.apis.runtime import LAUNCHERS
from corrkit.apis.train import train
from corrkit.utils.cli import user_errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--work-dir', help='default: work_dirs/<config name>')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                        help='resume from CKPT, or from the newest checkpoint of the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed precision (GPU)')
    parser.add_argument('--launcher', choices=LAUNCHERS, default='none')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help=argparse.SUPPRESS)  # set by torch.distributed.launch
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
    args = parser.parse_args(argv)
    with user_errors(args.debug):
        runner = train(args.config, args.work_dir, args.cfg_options, args.resume, args.amp,
                       args.launcher)
    print(f'work dir: {runner.work_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
