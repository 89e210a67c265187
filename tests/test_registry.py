import json

import pytest

from corrkit.registry import (ALL_REGISTRIES, BACKBONES, MODELS, REFINERS,
                              UnknownComponentError)
from corrkit.cli.components import format_components, registered_components

SNAPSHOT = 'snapshots/registered_names.json'


def own_names() -> dict:
    """Registered names of corrkit itself (plugins excluded)."""
    return {reg: sorted(n for n, where in entries.items() if where.startswith('corrkit.'))
            for reg, entries in registered_components().items()}


def test_registered_names_match_snapshot(repo):
    expected = json.loads((repo / 'tests' / SNAPSHOT).read_text())
    assert own_names() == expected, (
        'registered names changed; if deliberate, update tests/' + SNAPSHOT)


def test_unknown_type_names_registry_name_and_suggestions():
    with pytest.raises(UnknownComponentError) as info:
        REFINERS.build(dict(type='MatchToMatchRefinr', in_channels=3))
    msg = str(info.value)
    assert "'MatchToMatchRefinr'" in msg
    assert 'corrkit::refiner' in msg
    assert 'MatchToMatchRefiner' in info.value.suggestions


def test_unknown_type_in_model_registry():
    with pytest.raises(KeyError, match='closest registered names: CorrelationMatcher'):
        MODELS.build(dict(type='CorrelationMatchr'))


def test_unknown_type_nested_in_matcher_names_the_role_registry():
    cfg = dict(type='CorrelationMatcher', backbone=dict(type='TimmHypercolumnBackbon'),
               correlation=dict(type='MultiChannelCorrelation'),
               refiner=dict(type='MeanRefiner'), head=dict(type='SoftArgmaxHead'))
    with pytest.raises(KeyError, match=r"corrkit::backbone.*TimmHypercolumnBackbone"):
        MODELS.build(cfg)


def test_registering_a_name_twice_raises():
    cls = BACKBONES.get('TimmHypercolumnBackbone')
    with pytest.raises(KeyError, match='already registered'):
        BACKBONES.register_module(module=cls)


def test_every_registry_is_corrkit_scoped_and_lazy():
    for registry in ALL_REGISTRIES.values():
        assert registry.scope == 'corrkit'
        assert registry._locations, registry.name


def test_format_components_lists_every_name():
    table = registered_components()
    text = format_components(table)
    for entries in table.values():
        for name in entries:
            assert f' {name} ' in text


def test_unknown_config_key_suggests_the_parameter():
    from corrkit.registry import UnknownArgumentError
    with pytest.raises(UnknownArgumentError, match=r"MatchToMatchRefiner got an unexpected config "
                                                   r"key 'embed_dim'; did you mean embed_dims"):
        REFINERS.build(dict(type='MatchToMatchRefiner', in_channels=3, embed_dim=8))


def test_plain_runner_finds_corrkit_without_importing_its_apis(repo, tmp_path):
    """mmengine's own ``Runner.from_cfg`` on a corrkit config, in a fresh interpreter that
    has imported nothing of corrkit: the registries' ``locations`` register every component
    the demo config names (model, hooks, optimiser wrapper, checkpoint file backend)."""
    import subprocess
    import sys
    script = f"""
import sys
from mmengine.config import Config
from mmengine.runner import Runner
cfg = Config.fromfile({str(repo / 'configs' / 'transformatcher_mobilenetv2_mini.py')!r})
cfg.model.backbone.pretrained = False
cfg.work_dir = {str(tmp_path)!r}
assert not any(name.startswith('corrkit.apis') for name in sys.modules)
runner = Runner.from_cfg(cfg)
runner.optim_wrapper = runner.build_optim_wrapper(runner.optim_wrapper)
from mmengine.fileio.backends import backends
print(type(runner.model).__name__, type(runner.optim_wrapper).__name__,
      sorted(type(h).__name__ for h in runner.hooks), 'atomic_local' in backends)
assert not any(name.startswith('corrkit.apis') for name in sys.modules)
"""
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = out.stdout.strip().splitlines()[-1]
    assert line.startswith('CorrelationMatcher GuardedOptimWrapper'), line
    for hook in ('PCKReportHook', 'SafeCheckpointHook', 'EpochSeedHook'):
        assert hook in line
    assert line.endswith('True')


def test_every_registry_has_locations():
    from corrkit.registry import RUNTIME_REGISTRIES
    for name, registry in {**ALL_REGISTRIES, **RUNTIME_REGISTRIES}.items():
        assert registry._locations, f'registry {name} has no locations'


def test_runtime_registry_imports_its_components_lazily():
    """mmengine imports ``corrkit.registry`` for ``default_scope='corrkit'``; the optimiser
    wrapper registry alone must then find corrkit's wrappers (no other registry searched)."""
    import subprocess
    import sys
    script = """
import sys, torch
from mmengine.registry import OPTIM_WRAPPERS, DefaultScope
with DefaultScope.overwrite_default_scope('corrkit'):
    optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    wrapper = OPTIM_WRAPPERS.build(dict(type='GuardedOptimWrapper', optimizer=optimizer))
print(type(wrapper).__name__, 'corrkit.models' in sys.modules)
"""
    out = subprocess.run([sys.executable, '-c', script], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ['GuardedOptimWrapper', 'False']
