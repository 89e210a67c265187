"""What every command-line tool shares: user errors end in one line, not a traceback."""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator

#: Exceptions that mean "the user asked for something that cannot be done":
#: a missing file, a bad value or key, an unreadable checkpoint, a broken plugin.
USER_ERRORS = (OSError, ValueError, KeyError, RuntimeError, ImportError)


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
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f'error: {message}', file=sys.stderr)
        raise SystemExit(1) from None
