"""No corrkit module uses another module's private name, read from the source with ``ast``.

A name that starts with one underscore (not a dunder) is private to the module
that defines it: no other module imports it (``from .x import _y``) or reads it
from an imported module (``x._y``). A module whose name starts with one
underscore is private to its package: its siblings and their subpackages may
import it, nothing outside that package may.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .layering import module_name

PACKAGE = 'corrkit'
REPO = Path(__file__).resolve().parents[1]


def is_private(name: str) -> bool:
    return name.startswith('_') and not name.startswith('__')


def absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a ``from ... import`` reads from, as an absolute name."""
    if not node.level:
        return node.module or ''
    base = module.split('.')[:None if is_package else -1]
    base = base[:len(base) - node.level + 1]
    return '.'.join(base + ([node.module] if node.module else []))


def private_module_outside(target: str, importer: str) -> str | None:
    """The first private module in ``target`` whose package ``importer`` is not in."""
    parts = target.split('.')
    for index, part in enumerate(parts):
        owner = '.'.join(parts[:index])
        if is_private(part) and not (importer + '.').startswith(owner + '.'):
            return '.'.join(parts[:index + 1])
    return None


def dotted(node: ast.AST) -> list[str] | None:
    """``['a', 'b', 'c']`` for the expression ``a.b.c``, else ``None``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else None


class PrivateUse(ast.NodeVisitor):
    """The private names one module imports or reads from other corrkit modules."""

    def __init__(self, path: str, modules: set[str]):
        self.path, self.modules = path, modules
        self.module = module_name(path)
        self.is_package = path.endswith('__init__.py')
        self.bound: dict[str, str] = {}  # local name -> the corrkit module it is
        self.found: list[str] = []

    def report(self, node: ast.AST, what: str) -> None:
        self.found.append(f'{self.path}:{node.lineno} {what}')

    def check_module(self, node: ast.AST, target: str) -> None:
        private = private_module_outside(target, self.module)
        if private is not None:
            self.report(node, f'imports {target}: {private} is private to its package')

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split('.')[0] == PACKAGE:
                self.check_module(node, alias.name)
                local = alias.asname or alias.name.split('.')[0]
                self.bound[local] = alias.name if alias.asname else PACKAGE

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        origin = absolute(node, self.module, self.is_package)
        if origin.split('.')[0] != PACKAGE:
            return
        self.check_module(node, origin)
        for alias in node.names:
            target = f'{origin}.{alias.name}'
            if target in self.modules:
                self.check_module(node, target)
                self.bound[alias.asname or alias.name] = target
            elif is_private(alias.name):
                self.report(node, f'imports {alias.name}, private to {origin}')

    def visit_Attribute(self, node: ast.Attribute) -> None:
        parts = dotted(node)
        if parts is not None and parts[0] in self.bound and is_private(parts[-1]):
            owner = '.'.join([self.bound[parts[0]], *parts[1:-1]])
            if owner in self.modules and owner != self.module:
                self.report(node, f'reads {parts[-1]}, private to {owner}')
        self.generic_visit(node)


def corrkit_sources() -> dict[str, str]:
    return {p.relative_to(REPO).as_posix(): p.read_text(encoding='utf-8')
            for p in sorted((REPO / PACKAGE).rglob('*.py'))}


def private_uses(files: dict[str, str]) -> list[str]:
    """One message per use of another module's private name in ``files`` (source
    text by path relative to the repository root, ``'corrkit/ops/coords.py'``)."""
    modules = {module_name(path) for path in files}
    found = []
    for path, source in sorted(files.items()):
        visitor = PrivateUse(path, modules)
        visitor.visit(ast.parse(source, filename=path))
        found += visitor.found
    return found


def test_no_corrkit_module_uses_another_modules_private_name():
    found = private_uses(corrkit_sources())
    assert not found, '\n'.join(["private names used outside their module (make them "
                                 "public, or move the code that needs them):", *found])


FILES = {
    'corrkit/__init__.py': '',
    'corrkit/layers/__init__.py': '',
    'corrkit/layers/blocked.py': '_plan = 1\n',
    'corrkit/datasets/__init__.py': '',
    'corrkit/datasets/transforms/__init__.py': '',
    'corrkit/datasets/transforms/_pair.py': '',
    'corrkit/datasets/transforms/loading.py': 'from ._pair import pair\n',
    'corrkit/datasets/transforms/deeper/__init__.py': 'from .. import _pair\n',
}


@pytest.mark.parametrize('path, source, message', [
    ('corrkit/layers/fused.py', 'from .blocked import _plan',
     'corrkit/layers/fused.py:1 imports _plan, private to corrkit.layers.blocked'),
    ('corrkit/models/m.py', 'from ..layers import blocked as b\nx = b._plan',
     'corrkit/models/m.py:2 reads _plan, private to corrkit.layers.blocked'),
    ('corrkit/models/m.py', 'import corrkit.layers.blocked\nx = corrkit.layers.blocked._plan',
     'corrkit/models/m.py:2 reads _plan, private to corrkit.layers.blocked'),
    ('corrkit/datasets/other.py', 'from .transforms._pair import pair',
     'corrkit/datasets/other.py:1 imports corrkit.datasets.transforms._pair: '
     'corrkit.datasets.transforms._pair is private to its package'),
    ('corrkit/datasets/other.py', 'from .transforms import _pair',
     'corrkit/datasets/other.py:1 imports corrkit.datasets.transforms._pair: '
     'corrkit.datasets.transforms._pair is private to its package'),
])
def test_a_private_use_is_named_with_its_line(path, source, message):
    assert private_uses({**FILES, path: source}) == [message]


def test_own_privates_dunders_and_a_packages_private_modules_are_allowed():
    files = {**FILES, 'corrkit/layers/blocked.py': '_plan = 1\nx = _plan\n',
             'corrkit/layers/fused.py': 'from .blocked import __all__\nimport torch\n'
                                        'torch._C\n'}
    assert private_uses(files) == []

