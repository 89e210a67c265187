"""Imports point down the package layers, and no imports close a circle."""
from __future__ import annotations

from pathlib import Path

import pytest

from .layering import LAYERS, find_imports, layer_violations

REPO = Path(__file__).resolve().parents[1]


def corrkit_sources() -> dict[str, str]:
    return {p.relative_to(REPO).as_posix(): p.read_text(encoding='utf-8')
            for p in sorted((REPO / 'corrkit').rglob('*.py'))}


def with_lines(added: dict[str, str]) -> dict[str, str]:
    """corrkit's sources with lines appended to some files (a new file where there is none)."""
    files = corrkit_sources()
    for path, text in added.items():
        files[path] = files.get(path, '') + '\n' + text + '\n'
    return files


def test_corrkit_imports_follow_the_layers():
    violations = layer_violations(corrkit_sources())
    assert not violations, '\n'.join(['imports against the layers (DESIGN.md, "Layers"):',
                                      *violations])


def test_every_unit_has_a_level():
    units = {p.name.removesuffix('.py') for p in (REPO / 'corrkit').iterdir()
             if p.suffix == '.py' or (p / '__init__.py').is_file()}
    placed = {unit for level in LAYERS for unit in level}
    assert units - {'__init__'} <= placed, sorted(units - placed)


def test_an_upward_import_is_named_with_both_files():
    files = with_lines({'corrkit/ops/coords.py': 'def _injected():\n    from ..models import base'})
    upward = [m for m in layer_violations(files) if m.startswith('corrkit/ops/coords.py')]
    assert len(upward) == 1, upward
    assert 'corrkit/models/base.py' in upward[0] and 'ops (level 1) may not import models' \
        in upward[0]


def test_datasets_and_evaluation_stay_apart():
    files = with_lines({'corrkit/evaluation/report.py': 'from ..datasets import spair'})
    found = [m for m in layer_violations(files) if m.startswith('corrkit/evaluation/report.py')]
    assert len(found) == 1 and 'corrkit/datasets/spair.py' in found[0], found


@pytest.mark.parametrize('first, second, kind', [
    ('corrkit/analysis/benchmark.py', 'corrkit/visualization/matches.py', 'packages'),
    ('corrkit/ops/coords.py', 'corrkit/ops/tps.py', 'modules'),
])
def test_a_circle_is_named_with_both_files(first, second, kind):
    def module(path):
        return path.removesuffix('.py').replace('/', '.')
    files = with_lines({first: f'import {module(second)}',
                        second: f'def _later():\n    import {module(first)}'})
    circles = [m for m in layer_violations(files) if m.startswith(f'import circle between {kind}')]
    assert len(circles) == 1, circles
    assert first in circles[0] and second in circles[0]


def test_the_package_must_not_import_tools_or_plugins():
    files = with_lines({'corrkit/utils/text.py': 'import plugins.layer_weighted_refiner'})
    found = [m for m in layer_violations(files) if m.startswith('corrkit/utils/text.py')]
    assert len(found) == 1 and 'may not import plugins' in found[0], found


def test_a_new_unit_must_be_placed():
    files = with_lines({'corrkit/extras/__init__.py': ''})
    assert any(m.startswith('corrkit/extras/__init__.py: unit') for m in layer_violations(files))


def test_every_import_form_is_read():
    files = {
        'corrkit/__init__.py': '',
        'corrkit/ops/__init__.py': 'from . import coords\nfrom .coords import grid\n',
        'corrkit/ops/coords.py': 'grid = 1\n',
        'corrkit/models/__init__.py': '',
        'corrkit/models/base.py': '',
        'corrkit/errors.py': '',
        'corrkit/models/heads/__init__.py': 'from .. import base\n',
        'corrkit/models/heads/flow.py': (
            'import corrkit.ops.coords as c\n'
            'from corrkit import ops\n'
            'from ...ops.coords import grid\n'
            'class Head:\n'
            '    def forward(self):\n'
            '        from ..base import Thing\n'
            'if False:\n'
            '    import corrkit.models\n'
            'import torch, corrkit.errors\n'),
    }
    found = {(imp.path, imp.line, imp.target) for imp in find_imports(files)}
    assert found == {
        ('corrkit/ops/__init__.py', 1, 'corrkit.ops.coords'),
        ('corrkit/ops/__init__.py', 2, 'corrkit.ops.coords'),
        ('corrkit/models/heads/__init__.py', 1, 'corrkit.models.base'),
        ('corrkit/models/heads/flow.py', 1, 'corrkit.ops.coords'),
        ('corrkit/models/heads/flow.py', 2, 'corrkit.ops'),
        ('corrkit/models/heads/flow.py', 3, 'corrkit.ops.coords'),
        ('corrkit/models/heads/flow.py', 6, 'corrkit.models.base'),
        ('corrkit/models/heads/flow.py', 8, 'corrkit.models'),
        ('corrkit/models/heads/flow.py', 9, 'corrkit.errors'),
    }
