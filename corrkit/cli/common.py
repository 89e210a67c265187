"""What every command-line tool shares: user errors end in one line, not a traceback.

Which exceptions count as user errors is :data:`corrkit.errors.USER_ERRORS` (batch jobs
below the command line skip an item on the same ones).
"""
from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from typing import Iterator

from mmengine.config import DictAction

from ..errors import USER_ERRORS

#: How PyTorch wraps an exception raised inside a DataLoader worker.
_WORKER_TRACE = '\nOriginal Traceback (most recent call last):'


@contextmanager
def user_errors(debug: bool = False) -> Iterator[None]:
    """Turn a user error into ``error: <message>`` on stderr and exit status 1.

    With ``debug`` the exception propagates with its traceback.

    Examples:
        >>> with user_errors():
        ...     pass
    """
    try:
        yield
    except USER_ERRORS as err:
        if debug:
            raise
        message = str(err.args[0] if isinstance(err, KeyError) and err.args else err)
        if _WORKER_TRACE in message:  # keep the worker's own error, not its traceback
            head, trace = message.split(_WORKER_TRACE, 1)
            message = f'{head.strip()} {trace.strip().splitlines()[-1]}'
        print(f'error: {message}\n(--debug shows the traceback)', file=sys.stderr)
        raise SystemExit(1) from None


def add_runner_arguments(parser: argparse.ArgumentParser, launchers: tuple[str, ...]) -> None:
    """The arguments every Runner tool takes: config, work dir, overrides, launcher, debug.

    Examples:
        >>> import argparse
        >>> parser = argparse.ArgumentParser()
        >>> add_runner_arguments(parser, ('none', 'pytorch'))
        >>> parser.parse_args(['c.py', '--cfg-options', 'a.b=1']).cfg_options
        {'a.b': 1}
    """
    parser.add_argument('config')
    parser.add_argument('--work-dir', help='default: work_dirs/<config name>')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        metavar='KEY=VALUE', help='override config keys (dotted paths)')
    parser.add_argument('--launcher', choices=launchers, default='none')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0,
                        help=argparse.SUPPRESS)  # set by torch.distributed.launch
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')
