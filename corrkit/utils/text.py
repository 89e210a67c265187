"""Text helpers shared by messages, reports and tools."""
from __future__ import annotations

__all__ = ['first_line']


def first_line(err: BaseException) -> str:
    """The first line of an exception's message.

    Examples:
        >>> first_line(ValueError('bad value\\nmore detail'))
        'bad value'
    """
    text = str(err).strip()
    return text.splitlines()[0] if text else ''
