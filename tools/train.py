"""Train a matcher from a config with mmengine's Runner.

Usage:
    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options KEY=VALUE ...]
                          [--resume [CKPT]] [--amp] [--deterministic]
                          [--launcher {none,pytorch,slurm}]

--resume alone continues from the newest checkpoint in the work directory;
--resume CKPT from that checkpoint. Distributed: tools/dist_train.sh N CONFIG.
"""
import sys

from corrkit.cli import train

if __name__ == '__main__':
    sys.exit(train.main())
