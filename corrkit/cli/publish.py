"""``corrkit publish CHECKPOINT OUT``: strip a checkpoint and name it by its hash."""
from __future__ import annotations

import argparse
import sys

from . import standalone

HELP = ('Strip a training checkpoint for publishing (weights and rebuild meta) and write '
        'it as <name>-<sha256[:8]>.pth.')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('checkpoint', help='a training checkpoint or work directory')
    parser.add_argument('out', help='<folder>/<name>.pth: where, and the name before the hash')
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')


def run(args: argparse.Namespace) -> int:
    from ..apis.publish import publish_model
    from .common import user_errors
    from ..utils.fileio import sha256_of
    with user_errors(args.debug):
        path = publish_model(args.checkpoint, args.out)
    print(f'published: {path}')
    print(f'Weights SHA256: {sha256_of(path)}')
    return 0


def main(argv=None) -> int:
    """``tools/publish_model.py``."""
    return standalone(sys.modules[__name__], argv)
