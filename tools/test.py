"""Evaluate a matcher on a config's test split and print the PCK tables.

Usage:
    python tools/test.py CONFIG [--checkpoint CKPT] [--work-dir DIR]
                         [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm}]

Without a checkpoint, the model is evaluated as its config builds it (e.g. the
zero-shot baseline). Reports land in the work directory as pck_<threshold>.json.
"""
import sys

from corrkit.cli import test

if __name__ == '__main__':
    sys.exit(test.main())
