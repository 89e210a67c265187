"""Configs and plugins resolve from where they were shipped, never from the working directory."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from corrkit.config import load_config
from corrkit.hub.model_names import config_path, config_root, is_model_name


SHADOW = '''import os
open(os.path.join(os.path.dirname(__file__), '..', 'MARKER'), 'w').write('imported')
'''

# A fresh process, like a user's: either cwd first on sys.path (`python -c`, `python -m`) or
# not at all (the `corrkit` console script, `python tools/x.py`).
PROBE = '''import json, os, sys
if {drop_cwd}:
    sys.path[:] = [p for p in sys.path if p not in ('', os.getcwd())]
from corrkit.config import load_config
before = list(sys.path)
cfg = load_config('plugin_layer_weighted_refiner')
import plugins, plugins.layer_weighted_refiner
print(json.dumps(dict(plugins=plugins.__file__, before=before, after=sys.path,
                      refiner=cfg.model.refiner.type)))
'''


@pytest.mark.parametrize('drop_cwd', [False, True], ids=['cwd-on-path', 'console-script'])
def test_a_plugins_package_in_the_working_directory_does_not_shadow_the_shipped_one(
        tmp_path, drop_cwd):
    shadow = tmp_path / 'plugins' / 'layer_weighted_refiner'
    shadow.mkdir(parents=True)
    (tmp_path / 'plugins' / '__init__.py').write_text(SHADOW)
    (shadow / '__init__.py').write_text(SHADOW.replace("'..'", "'..', '..'"))
    done = subprocess.run([sys.executable, '-c', PROBE.format(drop_cwd=drop_cwd)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / 'MARKER').exists(), 'the working directory\'s plugins ran'
    out = json.loads(done.stdout.splitlines()[-1])
    assert Path(out['plugins']).resolve() == (config_root().parent / 'plugins' /
                                              '__init__.py').resolve()
    assert out['refiner'] == 'LayerWeightedRefiner'
    assert out['after'] == out['before']  # nothing put on sys.path, first or last


def evil(tmp_path):
    """A Python file outside the configs that leaves a marker if it ever runs."""
    marker = tmp_path / 'RAN'
    (tmp_path / 'evil.py').write_text(f'open({str(marker)!r}, "w").write("ran")\nmodel = {{}}\n')
    return marker


@pytest.mark.parametrize('make_name', [
    lambda tmp: os.path.relpath(tmp / 'evil', config_root()),             # ../../tmp/.../evil
    lambda tmp: str(tmp / 'evil'),                                         # absolute, no .py
    lambda tmp: 'ablations/../' + os.path.relpath(tmp / 'evil', config_root()),
    lambda tmp: 'ablations/../_base_/default_runtime',                     # _base_ via ..
    lambda tmp: '_base_/default_runtime',
    lambda tmp: 'ablations/_base_/x',
    lambda tmp: './transformatcher_tiny',
    lambda tmp: 'ablations//transformatcher_noaug_spair',
], ids=['dotdot', 'absolute', 'dotdot-inside', 'base-via-dotdot', 'base', 'base-part', 'dot',
        'empty-part'])
def test_a_model_name_resolves_only_inside_the_config_folder(tmp_path, make_name):
    marker = evil(tmp_path)
    name = make_name(tmp_path)
    assert is_model_name(name)
    with pytest.raises(KeyError) as err:
        load_config(name)
    assert repr(name) in str(err.value) or name in str(err.value)
    with pytest.raises(KeyError):
        config_path(name)
    assert not marker.exists()


def test_a_config_file_given_as_a_py_path_is_the_users_choice(tmp_path):
    marker = evil(tmp_path)
    load_config(str(tmp_path / 'evil.py'))
    assert marker.exists()


def test_a_name_that_is_also_a_file_in_the_working_directory_is_still_a_name(tmp_path,
                                                                              monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'transformatcher_tiny').write_text('model = dict(type="Nothing")\n')
    assert is_model_name('transformatcher_tiny')
    assert load_config('transformatcher_tiny').model.type == 'CorrelationMatcher'


def test_a_plugin_next_to_a_users_config_is_imported_from_there(tmp_path):
    """A config outside the package finds the plugin package in its own folder (or above)."""
    pkg = tmp_path / 'proj' / 'corrkit_test_plugin_pkg'
    pkg.mkdir(parents=True)
    (pkg / '__init__.py').write_text('WHERE = "proj"\n')
    (tmp_path / 'proj' / 'configs').mkdir()
    config = tmp_path / 'proj' / 'configs' / 'mine.py'
    config.write_text("custom_imports = dict(imports=['corrkit_test_plugin_pkg'])\n")
    try:
        load_config(config)
        assert sys.modules['corrkit_test_plugin_pkg'].WHERE == 'proj'
        assert str(tmp_path / 'proj') not in sys.path
    finally:
        sys.modules.pop('corrkit_test_plugin_pkg', None)


def test_a_config_outside_the_repository_inherits_a_shipped_model_by_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing of corrkit's beside the config or in the cwd
    from mmengine.config import Config
    resolve = Config.__dict__['_get_cfg_path']
    config = tmp_path / 'mine.py'
    config.write_text("_base_ = ['corrkit::transformatcher_mobilenetv2_mini.py', "
                      "'corrkit::_base_/schedules/adam_10e']\n"
                      "model = dict(refiner=dict(_delete_=True, type='MeanRefiner'))\n"
                      "train_cfg = dict(max_epochs=2)\n")
    with pytest.raises(KeyError, match='Duplicate key'):  # both bases define train_cfg
        load_config(config)
    config.write_text("_base_ = ['corrkit::transformatcher_mobilenetv2_mini.py']\n"
                      "model = dict(refiner=dict(_delete_=True, type='MeanRefiner'))\n"
                      "train_cfg = dict(max_epochs=2)\n")
    cfg = load_config(config)
    shipped = load_config('transformatcher_mobilenetv2_mini')
    assert cfg.model.refiner == dict(type='MeanRefiner') and cfg.train_cfg.max_epochs == 2
    assert cfg.model.backbone == shipped.model.backbone
    assert cfg.optim_wrapper == shipped.optim_wrapper
    assert Config.__dict__['_get_cfg_path'] is resolve  # mmengine's resolver is restored


@pytest.mark.parametrize('base, message', [
    ('corrkit::transformatcher_mobilenetv2_mnii.py',
     "did you mean 'transformatcher_mobilenetv2_mini'"),
    ('corrkit::../setup.py', "not an absolute path or one with ., .."),
    ('corrkit::/etc/passwd', "not an absolute path"),
])
def test_a_shipped_base_that_is_not_there_names_the_entry(tmp_path, base, message):
    config = tmp_path / 'mine.py'
    config.write_text(f'_base_ = [{base!r}]\n')
    with pytest.raises(KeyError) as err:
        load_config(config)
    assert base in str(err.value) and message in str(err.value)


def test_a_config_that_loads_a_config_while_it_is_read_does_not_hang(tmp_path):
    config = tmp_path / 'outer.py'
    config.write_text("_base_ = ['corrkit::zeroshot_mobilenetv2.py']\n"
                      "from corrkit.config import load_config as _load\n"
                      "inner_type = _load('corrkit_inner.py'.replace('corrkit_inner.py', "
                      f"{str(tmp_path / 'inner.py')!r})).model.refiner.type\n")
    (tmp_path / 'inner.py').write_text("_base_ = ['corrkit::transformatcher_tiny.py']\n")
    done = subprocess.run([sys.executable, '-c', 'from corrkit.config import load_config\n'
                           f'cfg = load_config({str(config)!r})\n'
                           'print(cfg.inner_type, cfg.model.refiner.type)'],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ['MatchToMatchRefiner', 'MeanRefiner']
