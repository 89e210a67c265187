"""Text helpers shared by messages, reports and tools."""
from __future__ import annotations

from typing import Iterable, Sequence

__all__ = ['TABLE_STYLES', 'first_line', 'format_table']

#: The styles :func:`format_table` renders.
TABLE_STYLES = ('plain', 'markdown')


def first_line(err: BaseException) -> str:
    """The first line of an exception's message.

    Examples:
        >>> first_line(ValueError('bad value\\nmore detail'))
        'bad value'
    """
    text = str(err).strip()
    return text.splitlines()[0] if text else ''


def format_table(header: Sequence[str], rows: Iterable[Sequence[object]], style: str = 'plain',
                 align: bool = True) -> str:
    """A text table: every report, listing and benchmark of corrkit prints through it.

    Floats are written with one decimal, everything else with ``str``.

    Args:
        header: Column names.
        rows: One sequence of cells per row, as many as ``header`` has.
        style: ``'plain'``: columns separated by a space, the first left-aligned
            and the others right-aligned (numbers line up), no trailing spaces.
            ``'markdown'``: a pipe table, every cell left-aligned.
        align: For ``'markdown'``, whether to pad each column to its widest cell
            so that the table also reads as plain text; ``'plain'`` always aligns.

    Returns:
        The table, lines joined by newlines, without a final newline.

    Raises:
        ValueError: If ``style`` is unknown or a row has a different number of
            cells than ``header`` (the row is named).

    Examples:
        >>> print(format_table(['alpha', 'cat'], [['0.1', 52.25]]))
        alpha   cat
        0.1    52.2
        >>> print(format_table(['name', 'PCK'], [['tiny', 8.0], ['flagship', 53.7]], 'markdown'))
        | name     | PCK  |
        |----------|------|
        | tiny     | 8.0  |
        | flagship | 53.7 |
        >>> print(format_table(['name', 'PCK'], [['tiny', '8.0']], 'markdown', align=False))
        | name | PCK |
        |---|---|
        | tiny | 8.0 |
    """
    if style not in TABLE_STYLES:
        raise ValueError(f'unknown table style {style!r}; expected one of {TABLE_STYLES}')
    cells = [[str(h) for h in header]]
    for index, row in enumerate(rows):
        if len(row) != len(header):
            raise ValueError(f'table row {index} has {len(row)} cells but the header has '
                             f'{len(header)} ({list(header)}): {list(row)}')
        cells.append([f'{v:.1f}' if isinstance(v, float) else str(v) for v in row])
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    if style == 'plain':
        return '\n'.join(' '.join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w)
                                  in enumerate(zip(row, widths))).rstrip() for row in cells)
    if not align:
        widths = [0] * len(header)
    lines = ['| ' + ' | '.join(c.ljust(w) for c, w in zip(row, widths)) + ' |' for row in cells]
    rule = '|' + '|'.join('-' * (w + 2) if align else '---' for w in widths) + '|'
    return '\n'.join([lines[0], rule, *lines[1:]])
