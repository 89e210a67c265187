"""Listing what every registry holds."""
from __future__ import annotations

from ..registry import ALL_REGISTRIES


def registered_components() -> dict[str, dict[str, str]]:
    """``{registry: {name: 'module.ClassName'}}`` for every corrkit registry.

    Only classes registered in corrkit's own registries are listed (not those
    of mmengine's parents). Plugins imported before the call are included.
    """
    table: dict[str, dict[str, str]] = {}
    for reg_name, registry in ALL_REGISTRIES.items():
        registry.import_from_location()
        table[reg_name] = {name: f'{cls.__module__}.{cls.__qualname__}'
                           for name, cls in sorted(registry.module_dict.items())}
    return table


def format_components(table: dict[str, dict[str, str]]) -> str:
    """A markdown table (registry, name, class) of :func:`registered_components`."""
    rows = [(reg, name, where) for reg, entries in table.items()
            for name, where in entries.items()] or [('-', '-', '-')]
    header = ('registry', 'name', 'class')
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(3)]
    line = '| ' + ' | '.join(h.ljust(w) for h, w in zip(header, widths)) + ' |'
    sep = '|' + '|'.join('-' * (w + 2) for w in widths) + '|'
    body = ['| ' + ' | '.join(c.ljust(w) for c, w in zip(r, widths)) + ' |' for r in rows]
    return '\n'.join([line, sep, *body])
