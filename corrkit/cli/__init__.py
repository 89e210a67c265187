"""The ``corrkit`` command: one entry point for what ``tools/`` runs.

``corrkit list``, ``train``, ``test``, ``benchmark``, ``match``, ``match-pairs``,
``transfer`` and ``publish`` each live in a module of this package with ``add_arguments(parser)``
and ``run(args)``; ``tools/train.py``, ``test.py``, ``benchmark.py`` and
``publish_model.py`` call the same modules' ``main``. The models are imported
inside ``run``.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from types import ModuleType
from typing import Any, Mapping, Sequence

from .. import __version__

__all__ = ['COMMANDS', 'main', 'standalone']

#: Subcommand → module of this package.
COMMANDS = {'list': 'list_models', 'train': 'train', 'test': 'test', 'benchmark': 'benchmark',
            'match': 'match', 'match-pairs': 'match_pairs', 'transfer': 'transfer',
            'publish': 'publish', 'doc': 'doc'}


def _module(name: str) -> ModuleType:
    return importlib.import_module(f'{__name__}.{COMMANDS[name]}')


def main(argv: Sequence[str] | None = None) -> int:
    """``corrkit COMMAND ...``; returns the exit status.

    Examples:
        >>> main(['list', 'keypoint_*_nn'])  # doctest: +ELLIPSIS
        keypoint_mobilenetv2_zeroshot_nn  zero-shot  ...  keypoint_mobilenetv2_zeroshot.py with ...
        start with: zeroshot_mobilenetv2 (corrkit match, match-pairs), ...
        0
    """
    parser = argparse.ArgumentParser(
        prog='corrkit', description='Semantic correspondence: list models, train, test, '
        'benchmark, match images, publish weights.')
    parser.add_argument('--version', action='version', version=f'corrkit {__version__}')
    commands = parser.add_subparsers(dest='command', required=True, metavar='COMMAND')
    for name in COMMANDS:
        module = _module(name)
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    args = parser.parse_args(argv)
    return args.run(args)


def standalone(module: ModuleType, argv: Sequence[str] | None = None,
               defaults: Mapping[str, Any] | None = None) -> int:
    """Run one command's module as its own script (what ``tools/*.py`` do).

    Args:
        module: The command's module (``add_arguments``, ``run`` and ``HELP``).
        argv: The arguments (default: ``sys.argv[1:]``).
        defaults: Argument defaults of this script that differ from the command's
            (``{'out_dir': 'work_dirs/demo'}``).
    """
    parser = argparse.ArgumentParser(description=module.HELP)
    module.add_arguments(parser)
    parser.set_defaults(**(defaults or {}))
    return module.run(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
