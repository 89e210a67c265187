import json

import pytest

from corrkit.registry import (ALL_REGISTRIES, BACKBONES, MODELS, REFINERS,
                              UnknownComponentError)
from corrkit.utils.components import format_components, registered_components

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
