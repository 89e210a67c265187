"""``corrkit doc NAME``: a component's or function's signature and docstring, in the terminal.

NAME is a registered component's type name as configs write it (``MatchToMatchRefiner``),
a checker of :mod:`corrkit.testing` (``check_refiner``) or a dotted path
(``corrkit.ops.cycle_score``). ``--config`` imports a config's ``custom_imports`` plugins
first, so their components are found too. An unknown NAME is a one-line error naming the
closest names (exit status 1).
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
from typing import Any

HELP = "Print a component's or function's signature and docstring (no built site needed)."

#: Signatures longer than this are printed one parameter per line.
WIDTH = 88


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('name', metavar='NAME',
                        help="a registered type ('MatchToMatchRefiner'), a checker of "
                        "corrkit.testing ('check_refiner') or a dotted path "
                        "('corrkit.ops.cycle_score')")
    parser.add_argument('--config', help="import this config's custom_imports plugins first")
    parser.add_argument('--debug', action='store_true', help='show full tracebacks')


def run(args: argparse.Namespace) -> int:
    from .common import user_errors
    with user_errors(args.debug):
        if args.config:
            from ..config import load_config
            load_config(args.config)
        text = describe(args.name)
    try:
        print(text)
    except BrokenPipeError:  # `corrkit doc NAME | head`
        sys.stdout = open(os.devnull, 'w')
    return 0


def describe(name: str) -> str:
    """The text ``corrkit doc NAME`` prints.

    Raises:
        KeyError: If ``name`` names no registered component, checker or importable
            object; the message suggests the closest names.

    Examples:
        >>> print(describe('corrkit.utils.text.format_table').splitlines()[0])
        corrkit.utils.text.format_table
    """
    found = _registered(name)
    if found:
        return '\n\n'.join(_format(obj, f'{name}  (registry: {reg})') for reg, obj in found)
    if '.' not in name:
        import corrkit.testing
        if name in corrkit.testing.__all__:
            return _format(getattr(corrkit.testing, name), f'corrkit.testing.{name}')
        raise KeyError(_unknown(name, _known_names()))
    obj, candidates = _import(name)
    if obj is None:
        raise KeyError(_unknown(name, candidates))
    return _format(obj, name)


def _registered(name: str) -> list[tuple[str, Any]]:
    """``[(registry, class)]`` for each corrkit registry that holds the type ``name``."""
    from ..registry import ALL_REGISTRIES
    from .components import registered_components
    table = registered_components()  # imports what every registry registers
    return [(reg, ALL_REGISTRIES[reg].module_dict[name])
            for reg, entries in table.items() if name in entries]


def _known_names() -> list[str]:
    """Every registered type name and every checker of :mod:`corrkit.testing`."""
    import corrkit.testing

    from .components import registered_components
    names = {name for entries in registered_components().values() for name in entries}
    return sorted(names | set(corrkit.testing.__all__))


def _import(path: str) -> tuple[Any, list[str]]:
    """The object at a dotted path, or ``None`` and the dotted names close to where it stopped."""
    parts = path.split('.')
    for cut in range(len(parts), 0, -1):
        module_name = '.'.join(parts[:cut])
        try:
            obj = importlib.import_module(module_name)
        except ImportError as err:
            if err.name is not None and not module_name.startswith(err.name):
                raise  # the module exists but fails on an import of its own: say so
            continue
        for i, attr in enumerate(parts[cut:], cut):
            if not hasattr(obj, attr):
                prefix = '.'.join(parts[:i])
                return None, [f'{prefix}.{a}' for a in dir(obj) if not a.startswith('_')]
            obj = getattr(obj, attr)
        return obj, []
    return None, _known_names()


def _unknown(name: str, candidates: list[str]) -> str:
    from ..hub.model_names import suggest_names
    hint = suggest_names(name, candidates)
    return (f'nothing named {name!r}: not a registered component, a checker of '
            f'corrkit.testing or an importable dotted path{hint}')


def _format(obj: Any, title: str) -> str:
    """``title``, the import path, the signature and the docstring, as plain text."""
    lines = [title]
    module, qualname = getattr(obj, '__module__', None), getattr(obj, '__qualname__', None)
    if module and qualname and f'{module}.{qualname}' != title:
        kind = 'class' if inspect.isclass(obj) else 'function' if callable(obj) else 'object'
        lines.append(f'{kind} {module}.{qualname}')
    if not (callable(obj) or inspect.ismodule(obj)):  # a value: show it, not its type's doc
        text = repr(obj)
        return '\n'.join(lines + ['', f'{type(obj).__name__}: '
                                       f'{text if len(text) <= 2000 else text[:2000] + " ..."}'])
    signature = _signature(obj)
    if signature:
        lines += ['', signature]
    doc = inspect.getdoc(obj)
    lines += ['', doc or '(no docstring)']
    return '\n'.join(lines)


def _signature(obj: Any) -> str:
    """``Name(param, ...) -> ret``, one parameter a line when it would be wider than WIDTH."""
    if not callable(obj):
        return ''
    try:
        sig = _unquoted(inspect.signature(obj))
    except (TypeError, ValueError):
        return ''
    name = getattr(obj, '__name__', '')
    text = f'{name}{sig}'
    if len(text) <= WIDTH or not sig.parameters:
        return text
    params, seen_keyword_only = [], False
    for param in sig.parameters.values():
        if param.kind == param.KEYWORD_ONLY and not seen_keyword_only:
            params.append('*')
        seen_keyword_only |= param.kind in (param.KEYWORD_ONLY, param.VAR_POSITIONAL)
        params.append(str(param))
        if param.kind == param.POSITIONAL_ONLY and _next_kind(sig, param) != param.POSITIONAL_ONLY:
            params.append('/')
    ret = ('' if sig.return_annotation is inspect.Signature.empty
           else f' -> {inspect.formatannotation(sig.return_annotation)}')
    body = ''.join(f'    {p},\n' for p in params)
    return f'{name}(\n{body}){ret}'


class _Raw(str):
    """An annotation kept as a string (``from __future__ import annotations``), shown unquoted."""

    def __repr__(self) -> str:
        return str(self)


def _unquoted(sig: inspect.Signature) -> inspect.Signature:
    """``sig`` with its string annotations shown as written (``x: int``, not ``x: 'int'``)."""
    def raw(annotation: Any) -> Any:
        return _Raw(annotation) if isinstance(annotation, str) else annotation
    return sig.replace(
        parameters=[p.replace(annotation=raw(p.annotation)) for p in sig.parameters.values()],
        return_annotation=raw(sig.return_annotation))


def _next_kind(sig: inspect.Signature, param: inspect.Parameter) -> Any:
    params = list(sig.parameters.values())
    i = params.index(param)
    return params[i + 1].kind if i + 1 < len(params) else None
