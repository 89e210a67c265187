"""``corrkit doc NAME``: signature and docstring of a component, checker or dotted path."""
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import corrkit.ops
import corrkit.testing
from corrkit.cli import COMMANDS, main
from corrkit.models.refiners import MatchToMatchRefiner

ROOT = Path(__file__).resolve().parents[1]


def first_line(obj):
    return inspect.getdoc(obj).splitlines()[0]


def test_doc_is_a_command():
    assert COMMANDS['doc'] == 'doc'


def test_a_registered_refiner_prints_registry_path_signature_and_docstring(capsys):
    assert main(['doc', 'MatchToMatchRefiner']) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == 'MatchToMatchRefiner  (registry: refiner)'
    assert 'class corrkit.models.refiners.match_to_match.MatchToMatchRefiner' in out
    assert 'MatchToMatchRefiner(\n    in_channels: int,\n    embed_dims: int = 16,' in out
    assert first_line(MatchToMatchRefiner) in out
    assert 'Args:\n    in_channels:' in out  # the class docstring documents the constructor


def test_a_checker_prints_its_signature_and_docstring(capsys):
    assert main(['doc', 'check_refiner']) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == 'corrkit.testing.check_refiner'
    signature = inspect.signature(corrkit.testing.check_refiner)
    assert 'check_refiner(' in out and 'refiner: Refiner' in out
    block = out.split('check_refiner(\n', 1)[1].split('\n)', 1)[0].splitlines()
    assert [line.split(':')[0].strip() for line in block] == list(signature.parameters)
    assert first_line(corrkit.testing.check_refiner) in out


def test_a_dotted_path_prints_its_signature_and_docstring(capsys):
    assert main(['doc', 'corrkit.ops.cycle_score']) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:2] == ['corrkit.ops.cycle_score',
                                    'function corrkit.ops.fusion.cycle_score']
    assert 'sigma: float = 0.05,' in out
    assert first_line(corrkit.ops.cycle_score) in out


@pytest.mark.parametrize('name, close', [('MatchToMatchRefinr', 'MatchToMatchRefiner'),
                                         ('check_refner', 'check_refiner'),
                                         ('corrkit.ops.cycle_scor', 'corrkit.ops.cycle_score')])
def test_a_misspelt_name_exits_1_naming_a_close_match(capsys, name, close):
    with pytest.raises(SystemExit) as exit_:
        main(['doc', name])
    assert exit_.value.code == 1
    captured = capsys.readouterr()
    assert captured.out == ''
    assert f'error: nothing named {name!r}' in captured.err
    assert f'did you mean {close!r}' in captured.err


def test_a_plugin_class_is_found_after_its_config(tmp_path):
    def doc(*args):  # a fresh process: nothing has imported the plugin yet
        return subprocess.run([sys.executable, '-m', 'corrkit.cli', 'doc', *args], cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)

    done = doc('LayerWeightedRefiner')
    assert done.returncode == 1 and "nothing named 'LayerWeightedRefiner'" in done.stderr
    done = doc('LayerWeightedRefiner', '--config',
               str(ROOT / 'configs' / 'plugin_layer_weighted_refiner.py'))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == ['LayerWeightedRefiner  (registry: refiner)',
                         'class plugins.layer_weighted_refiner.layer_weighted.LayerWeightedRefiner']
    assert any(line.startswith('LayerWeightedRefiner(in_channels: int') for line in lines)
    assert 'Softmax-weighted sum of the correlation channels, times a learned scale.' in lines


def test_a_value_shows_itself_not_its_types_docstring(capsys):
    assert main(['doc', 'corrkit.testing.DTYPES']) == 0
    out = capsys.readouterr().out
    assert 'tuple: (torch.float32, torch.float64)' in out and 'immutable sequence' not in out


def test_a_module_that_fails_on_its_own_import_is_named(tmp_path, monkeypatch, capsys):
    (tmp_path / 'corrkit_doc_broken.py').write_text('import corrkit_doc_no_such_dependency\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        main(['doc', 'corrkit_doc_broken.thing'])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "No module named 'corrkit_doc_no_such_dependency'" in err, err
