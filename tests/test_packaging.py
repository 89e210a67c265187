"""The wheel carries every config (and plugin) once; names resolve from it without the repository."""
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import corrkit
from corrkit.apis import init_matcher
from corrkit.hub.model_names import config_path, config_root, model_names


@pytest.fixture(scope='module')
def wheel(repo, tmp_path_factory):
    out = tmp_path_factory.mktemp('wheel')
    done = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--no-deps',
                           '--no-build-isolation', '-q', str(repo), '-w', str(out)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return next(out.glob('corrkit-*.whl'))


def test_the_wheel_carries_every_config_and_plugin_once(repo, wheel):
    configs = sorted(p.relative_to(repo / 'configs').as_posix()
                     for p in (repo / 'configs').rglob('*') if p.is_file()
                     and '__pycache__' not in p.parts)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        packaged = sorted(n.split('corrkit/.mim/configs/', 1)[1] for n in names
                          if n.startswith('corrkit/.mim/configs/'))
        assert packaged == configs and '_base_/default_runtime.py' in packaged
        assert 'metafiles/keypoint.yml' in packaged
        assert archive.read('corrkit/.mim/model-index.yml') == \
            (repo / 'model-index.yml').read_bytes()
        for name in ('transformatcher_spair.py', '_base_/datasets/spair.py'):
            assert archive.read(f'corrkit/.mim/configs/{name}') == \
                (repo / 'configs' / name).read_bytes()
    assert not any(n.startswith(('configs/', 'plugins/')) for n in names)  # no top-level copy
    plugins = {n for n in names if n.startswith('corrkit/.mim/plugins/')}
    assert 'corrkit/.mim/plugins/layer_weighted_refiner/layer_weighted.py' in plugins
    assert not any('/test_' in n for n in plugins)  # the plugin's tests stay in the repository


def test_names_resolve_from_the_unpacked_wheel_alone(wheel, tmp_path):
    """Outside the repository, with the wheel's package first on the path: names, _base_
    inheritance and the model list come from corrkit/.mim/configs."""
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(tmp_path / 'site')
    code = ('import corrkit\n'
            'from corrkit.hub.model_names import config_root\n'
            'from corrkit.config import load_config\n'
            'print(corrkit.__file__)\n'
            'print(config_root())\n'
            "cfg = load_config('transformatcher_tiny')\n"
            'print(cfg.model.type, cfg.model.input_size, cfg.test_evaluator.threshold)\n'
            "print(len(corrkit.list_models('dinov2')))\n"
            "cfg = load_config('plugin_layer_weighted_refiner')\n"
            'import plugins.layer_weighted_refiner as plugin\n'
            'print(plugin.__file__)\n'
            'from corrkit.hub.model_index import index_path, model_info\n'
            "print(index_path(), model_info('zeroshot_mobilenetv2').metafile)\n")
    run = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env={'PYTHONPATH': str(tmp_path / 'site'),
                                                      'PATH': '/usr/bin:/bin'})
    assert run.returncode == 0, run.stderr
    package, root, model, count, plugin, index = run.stdout.splitlines()
    assert Path(package).is_relative_to(tmp_path / 'site')
    assert Path(root) == tmp_path / 'site' / 'corrkit' / '.mim' / 'configs'
    assert model == 'CorrelationMatcher 64 bbox'  # its _base_ chain read from the package
    assert int(count) == 5
    # custom_imports: the plugin package the wheel carries next to its configs
    assert Path(plugin).is_relative_to(tmp_path / 'site' / 'corrkit' / '.mim' / 'plugins')
    index_file, metafile = map(Path, index.split())  # the model index, with its metafiles
    assert index_file == tmp_path / 'site' / 'corrkit' / '.mim' / 'model-index.yml'
    assert metafile == Path(root) / 'metafiles' / 'zeroshot.yml'


def test_a_name_and_its_path_build_the_same_model():
    by_name = init_matcher('transformatcher_tiny')
    by_path = init_matcher(str(config_path('transformatcher_tiny')))
    assert by_name.input_size == by_path.input_size == (64, 64)
    assert [k for k in by_name.state_dict()] == [k for k in by_path.state_dict()]


def test_every_config_has_a_name_and_a_description(repo):
    names = model_names()
    assert config_root() == repo / 'configs'
    assert 'transformatcher_spair' in names and 'ablations/transformatcher_noaug_spair' in names
    assert not any(n.startswith('_base_') for n in names)
    described = corrkit.list_models()
    assert list(described) == names and all(described.values())
    assert list(corrkit.list_models('keypoint_*_nn')) == ['keypoint_mobilenetv2_zeroshot_nn']


@pytest.mark.parametrize('name, message', [
    ('transformatcher_spiar', "did you mean 'transformatcher_spair'"),
    ('_base_/default_runtime', "no model named '_base_/default_runtime'"),
])
def test_an_unknown_name_says_what_exists(name, message):
    with pytest.raises(KeyError, match=message):
        init_matcher(name)
