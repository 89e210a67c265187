"""Train a matcher from a config with mmengine's Runner.

Usage:
    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...]
                          [--resume [CKPT]] [--amp] [--deterministic]
                          [--launcher {none,pytorch,slurm}]

--resume alone continues from the newest checkpoint in the work directory;
--resume CKPT from that checkpoint. Distributed: tools/dist_train.sh N CONFIG.
"""
import argparse
import sys

from corrkit.apis.runtime import LAUNCHERS
from corrkit.apis.train import train
from corrkit.utils.allocator import tune_cpu_allocator
from corrkit.utils.cli import add_runner_arguments, user_errors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runner_arguments(parser, LAUNCHERS)
    parser.add_argument('--resume', nargs='?', const='auto', default=None, metavar='CKPT',
                        help='resume from CKPT, or from the newest checkpoint of the work dir')
    parser.add_argument('--amp', action='store_true', help='mixed precision (GPU)')
    parser.add_argument('--deterministic', action='store_true',
                        help='deterministic algorithms only (randomness.deterministic=True)')
    args = parser.parse_args(argv)
    tune_cpu_allocator()  # reuse large CPU blocks (CORRKIT_TUNE_MALLOC=0: off)
    with user_errors(args.debug):
        options = dict(args.cfg_options, **({'randomness.deterministic': True}
                                            if args.deterministic else {}))
        runner = train(args.config, args.work_dir, options, args.resume, args.amp,
                       args.launcher)
    print(f'work dir: {runner.work_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
