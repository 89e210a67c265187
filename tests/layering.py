"""The package layers of corrkit, read from the source with ``ast``.

Every ``import`` and ``from ... import`` counts, at module level or inside a
function, relative or absolute. Each module belongs to a unit (a subpackage
such as ``models``, or a bottom module such as ``structures.py``) and each unit
to a level; an import may point to its own level or lower ones. On top of that,
the units of one level must not import each other in a circle, ``datasets`` and
``evaluation`` must not import each other at all, and the modules of one unit
must not import each other in a circle.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterable, Mapping

PACKAGE = 'corrkit'

#: Units from the bottom up; the units of one entry share a level.
LAYERS = (
    # coco: COCO keypoints files (format only), read by datasets and apis
    # hub: named models and their files, read by corrkit.list_models at the package root
    ('corrkit', 'registry', 'structures', 'errors', 'config', 'hub', 'utils', 'coco'),
    ('ops',),
    ('layers',),
    ('models',),
    ('datasets', 'evaluation'),
    ('engine',),
    ('analysis', 'visualization', 'testing'),
    ('apis',),
    ('cli',),  # the corrkit command, fronting apis like tools/ do
    ('tools', 'plugins'),  # outside the package, above all of it
)
LEVEL = {unit: level for level, units in enumerate(LAYERS) for unit in units}

#: Top-level names outside the package that it must not import.
OUTSIDE = LAYERS[-1]

#: Units of one level that must not import each other (what both need lives below).
APART = {frozenset(('datasets', 'evaluation'))}


@dataclass(frozen=True)
class Import:
    """One import of one corrkit module by another."""

    path: str  # the importing file, e.g. 'corrkit/apis/demo.py'
    line: int
    module: str  # the importing module, e.g. 'corrkit.apis.demo'
    target: str  # the imported module, e.g. 'corrkit.models.base'
    target_path: str

    def __str__(self) -> str:
        return f'{self.path}:{self.line} imports {self.target} ({self.target_path})'


def module_name(path: str) -> str:
    """The dotted name of a source file: ``'corrkit/ops/__init__.py'`` → ``'corrkit.ops'``."""
    parts = PurePosixPath(path).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def unit_of(module: str) -> str:
    """The unit a module belongs to: the package root or the name just below it; outside
    the package, its top-level name."""
    parts = module.split('.')
    return parts[1] if parts[0] == PACKAGE and len(parts) > 1 else parts[0]


def find_imports(files: Mapping[str, str]) -> list[Import]:
    """Every import from one corrkit module of another, in the given sources.

    Args:
        files: Source text by path relative to the repository root
            (``'corrkit/ops/coords.py'``).
    """
    paths = {module_name(path): path for path in files}
    found = []
    for path, source in sorted(files.items()):
        module = module_name(path)
        is_package = path.endswith('__init__.py')
        for node in ast.walk(ast.parse(source, filename=path)):
            for name in _imported_names(node, module, is_package):
                if name.split('.')[0] in OUTSIDE:
                    found.append(Import(path, node.lineno, module, name, name.split('.')[0] + '/'))
                    continue
                target = _known_prefix(name, paths)
                if target is not None and target != module:
                    found.append(Import(path, node.lineno, module, target, paths[target]))
    return found


def _imported_names(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement names; for ``from a import b`` that is
    ``a.b``, the module ``a.b`` or a name defined in ``a``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split('.')
        base = base if is_package else base[:-1]
        if node.level > len(base):
            return []  # beyond the package: Python refuses it anyway
        base = base[:len(base) - node.level + 1]
        origin = '.'.join(base + ([node.module] if node.module else []))
    else:
        origin = node.module or ''
    # `from pkg import name` loads pkg.name when that is a module, else pkg itself
    return [f'{origin}.{alias.name}' for alias in node.names]


def _known_prefix(name: str, modules: Mapping[str, str]) -> str | None:
    parts = name.split('.')
    if parts[0] != PACKAGE:
        return None
    while parts and '.'.join(parts) not in modules:
        parts.pop()
    return '.'.join(parts) or None


def layer_violations(files: Mapping[str, str]) -> list[str]:
    """One message per import that breaks the layers, and per import circle.

    Examples:
        >>> files = {'corrkit/__init__.py': '', 'corrkit/ops/__init__.py': '',
        ...          'corrkit/models/__init__.py': '',
        ...          'corrkit/ops/coords.py': 'def f():\\n    from ..models import base\\n'}
        >>> print(*layer_violations(files))
        corrkit/ops/coords.py:2 imports corrkit.models (corrkit/models/__init__.py):
        ops (level 1) may not import models (level 3); imports point down only
    """
    imports = find_imports(files)
    messages = [f'{path}: unit {unit_of(module_name(path))!r} has no level; add it to '
                f'LAYERS in tests/layering.py'
                for path in sorted(files) if unit_of(module_name(path)) not in LEVEL]
    allowed = []
    for imp in imports:
        low, high = unit_of(imp.target), unit_of(imp.module)
        if low not in LEVEL or high not in LEVEL:
            continue
        if LEVEL[low] > LEVEL[high]:
            messages.append(f'{imp}: {high} (level {LEVEL[high]}) may not import {low} '
                            f'(level {LEVEL[low]}); imports point down only')
        elif frozenset((low, high)) in APART:
            messages.append(f'{imp}: {high} and {low} may not import each other; what both '
                            f'need belongs in a lower level')
        else:
            allowed.append(imp)
    between_units = [imp for imp in allowed if unit_of(imp.module) != unit_of(imp.target)]
    messages += [f'import circle between packages {" → ".join(cycle)}: '
                 + '; '.join(map(str, edges))
                 for cycle, edges in _cycles(between_units, unit_of)]
    within_units = [imp for imp in allowed if unit_of(imp.module) == unit_of(imp.target)]
    messages += [f'import circle between modules {" → ".join(cycle)}: '
                 + '; '.join(map(str, edges))
                 for cycle, edges in _cycles(within_units, lambda module: module)]
    return messages


def _cycles(imports: Iterable[Import], node_of) -> list[tuple[list[str], list[Import]]]:
    """One circle per strongly connected group of nodes, as nodes and the imports that close it."""
    edges: dict[str, dict[str, Import]] = {}
    for imp in imports:
        edges.setdefault(node_of(imp.module), {}).setdefault(node_of(imp.target), imp)
    found, seen = [], set()
    for start in sorted(edges):
        if start in seen:
            continue
        path = _path_back(start, edges)
        if path is None:
            continue
        seen.update(path)
        cycle = [start, *path]
        found.append((cycle, [edges[a][b] for a, b in zip(cycle, cycle[1:])]))
    return found


def _path_back(start: str, edges: Mapping[str, Mapping[str, Import]]) -> list[str] | None:
    """The shortest chain of nodes from ``start`` back to itself (breadth first), if any."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(edges.get(node, {})):
                if nxt == start:
                    chain = []
                    while node != start:
                        chain.append(node)
                        node = parent[node]
                    return [*reversed(chain), start]
                if nxt not in parent:
                    parent[nxt] = node
                    following.append(nxt)
        frontier = following
    return None
