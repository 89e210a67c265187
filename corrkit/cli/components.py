"""Listing what every registry holds."""
from __future__ import annotations

from ..registry import ALL_REGISTRIES
from ..utils.text import format_table


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
    """An aligned markdown table (registry, name, class) of :func:`registered_components`.

    Examples:
        >>> print(format_components({'REFINERS': {'MeanRefiner': 'corrkit.MeanRefiner'}}))
        | registry | name        | class               |
        |----------|-------------|---------------------|
        | REFINERS | MeanRefiner | corrkit.MeanRefiner |
    """
    rows = [(reg, name, where) for reg, entries in table.items()
            for name, where in entries.items()] or [('-', '-', '-')]
    return format_table(('registry', 'name', 'class'), rows, style='markdown')
