"""Weight loading and offline behaviour of the backbones."""
import urllib.error

import pytest
import timm
import torch
import torchvision

from corrkit.apis import init_matcher
from corrkit.models.backbones import TimmHypercolumnBackbone, TorchvisionHypercolumnBackbone


def test_timm_resnet101_taps_26_blocks():
    net = TimmHypercolumnBackbone('resnet101', taps=(3, 4))
    assert net.out_channels == [1024] * 23 + [2048] * 3
    assert net.strides == [16] * 23 + [32] * 3
    assert len(net.stages) == 4  # layer1..layer4, no classifier after
    assert sum(p.numel() for p in net.parameters()) == 42_500_160
    assert net.feature_sizes(240, 240)[0] == (15, 15) and net.feature_sizes(240, 240)[-1] == (8, 8)


def test_timm_local_checkpoint_is_loaded(tmp_path):
    ref = timm.create_model('test_resnet')
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_()
    path = tmp_path / 'weights.pth'
    torch.save(ref.state_dict(), path)
    net = TimmHypercolumnBackbone('test_resnet', taps=(3, 4), pretrained=str(path))
    torch.testing.assert_close(net.stages[2][0].conv1.weight, ref.layer3[0].conv1.weight)


def test_timm_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        TimmHypercolumnBackbone('test_resnet', pretrained=str(tmp_path / 'nope.pth'))


def test_timm_offline_pretrained_says_where_weights_go(monkeypatch, tmp_path):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path))
    with pytest.raises(RuntimeError, match=r"resnet18.tv_in1k.*resnet18-f37072fd.pth.*"
                                           r"pretrained to its path.*HF_HOME"):
        TimmHypercolumnBackbone('resnet18.tv_in1k', pretrained=True)


def test_flagship_with_pretrained_offline_fails_helpfully(repo, monkeypatch, tmp_path):
    monkeypatch.setenv('HF_HUB_OFFLINE', '1')
    monkeypatch.setenv('HF_HOME', str(tmp_path))
    with pytest.raises(RuntimeError, match=r"resnet101.tv_in1k.*model.backbone.pretrained"):
        init_matcher(repo / 'configs' / 'transformatcher_spair.py')


def test_non_resnet_timm_model_is_refused():
    with pytest.raises(ValueError, match='ResNet-family'):
        TimmHypercolumnBackbone('test_vit')


def _fake_torchvision_cache(tmp_path, monkeypatch):
    """A torch hub cache holding a (random) mobilenet_v2 file under the official name."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    ref = torchvision.models.mobilenet_v2()
    target = tmp_path / 'hub' / 'checkpoints' / 'mobilenet_v2-b0353104.pth'
    target.parent.mkdir(parents=True)
    torch.save(ref.state_dict(), target)
    return ref


def test_torchvision_named_weights_load_from_the_hub_cache(tmp_path, monkeypatch):
    ref = _fake_torchvision_cache(tmp_path, monkeypatch)
    net = TorchvisionHypercolumnBackbone('mobilenet_v2', ['features.7'], weights='IMAGENET1K_V1')
    first = next(net.extractor.parameters())
    torch.testing.assert_close(first, ref.features[0][0].weight)


def test_torchvision_missing_weights_give_the_cache_path(tmp_path, monkeypatch):
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))

    def no_network(*args, **kwargs):
        raise urllib.error.URLError('no network')

    monkeypatch.setattr(torch.hub, 'download_url_to_file', no_network)
    expected = str(tmp_path / 'hub' / 'checkpoints' / 'mobilenet_v2-b0353104.pth')
    with pytest.raises(RuntimeError) as info:
        TorchvisionHypercolumnBackbone('mobilenet_v2', ['features.7'], weights='IMAGENET1K_V1')
    assert expected in str(info.value)


def test_torchvision_local_weights_file_and_bad_names(tmp_path):
    ref = torchvision.models.mobilenet_v2()
    path = tmp_path / 'mine.pth'
    torch.save(ref.state_dict(), path)
    net = TorchvisionHypercolumnBackbone('mobilenet_v2', ['features.4'], pretrained=str(path))
    torch.testing.assert_close(next(net.extractor.parameters()), ref.features[0][0].weight)
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        TorchvisionHypercolumnBackbone('mobilenet_v2', ['features.4'],
                                       pretrained=str(tmp_path / 'nope.pth'))
    with pytest.raises(ValueError, match='set one of them'):
        TorchvisionHypercolumnBackbone('mobilenet_v2', ['features.4'], pretrained=str(path),
                                       weights='IMAGENET1K_V1')
    with pytest.raises(ValueError, match='IMAGENET1K_V1'):
        TorchvisionHypercolumnBackbone('mobilenet_v2', ['features.4'], weights='IMAGENET9K')
    with pytest.raises(ValueError, match="'features.99'"):
        TorchvisionHypercolumnBackbone('mobilenet_v2', ['features.99'])


def test_timm_loads_a_torchvision_format_checkpoint(tmp_path):
    """The offline error suggests torchvision's file; timm's ResNet reads its key names."""
    ref = torchvision.models.resnet18()
    path = tmp_path / 'resnet18-f37072fd.pth'
    torch.save(ref.state_dict(), path)
    net = TimmHypercolumnBackbone('resnet18', taps=(3, 4), pretrained=str(path))
    torch.testing.assert_close(net.stages[3][1].conv2.weight, ref.layer4[1].conv2.weight)


def test_pretrained_true_loads_torchvisions_default_weights(tmp_path, monkeypatch):
    """``pretrained=True`` loads the weights enum's DEFAULT; ``weights`` picks others."""
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    default = torchvision.models.MobileNet_V2_Weights.DEFAULT
    target = tmp_path / 'hub' / 'checkpoints' / default.url.rsplit('/', 1)[-1]
    target.parent.mkdir(parents=True)
    ref = torchvision.models.mobilenet_v2()
    torch.save(ref.state_dict(), target)
    net = TorchvisionHypercolumnBackbone('mobilenet_v2', ['features.4'], pretrained=True)
    torch.testing.assert_close(next(net.extractor.parameters()), ref.features[0][0].weight)
    assert default.name != 'IMAGENET1K_V1'  # so the zero-shot config must name its file
    # pretrained=False is the off switch whatever weights says: nothing is loaded or fetched
    off = TorchvisionHypercolumnBackbone('mobilenet_v2', ['features.4'], pretrained=False,
                                         weights='IMAGENET1K_V1')
    assert not torch.equal(next(off.extractor.parameters()), ref.features[0][0].weight)


@pytest.mark.parametrize('override', [{'model.backbone.weights': None},
                                      {'model.backbone.pretrained': False}])
def test_zero_shot_config_builds_random_with_either_off_switch(repo, tmp_path, monkeypatch,
                                                                override):
    """The alias keeps its meaning: ``weights=None`` still builds the config without weights,
    like the new ``pretrained=False`` (an empty hub cache: any fetch would fail)."""
    from corrkit.registry import BACKBONES
    from corrkit.config import load_config
    monkeypatch.setenv('TORCH_HOME', str(tmp_path))
    cfg = load_config(repo / 'configs' / 'zeroshot_mobilenetv2.py', override)
    assert BACKBONES.build(cfg.model.backbone).out_channels


@pytest.mark.parametrize('type_, old, value', [
    ('TimmHypercolumnBackbone', 'stages', (3, 4)),
    ('TimmViTHypercolumnBackbone', 'blocks', (1, 3)),
    ('TorchvisionHypercolumnBackbone', 'return_nodes', ['features.7']),
])
def test_old_tap_keys_name_the_new_one(type_, old, value):
    from corrkit.errors import UnknownArgumentError
    from corrkit.registry import BACKBONES
    with pytest.raises(UnknownArgumentError,
                       match=rf"{type_} got an unexpected config key '{old}'; did you mean "
                             rf"'taps'\? '{old}' was renamed to 'taps'"):
        BACKBONES.build({'type': type_, old: value})


def test_old_key_in_a_config_fails_before_anything_is_built(repo):
    from corrkit.errors import UnknownArgumentError
    cfg = {'model.backbone.stages': (3, 4), 'model.backbone.model_name': 'test_resnet',
           'model.backbone.pretrained': False}
    with pytest.raises(UnknownArgumentError, match="did you mean 'taps'"):
        init_matcher(repo / 'configs' / 'transformatcher_tiny.py', cfg_options=cfg)


def test_feature_info_describes_every_map_in_timms_terms():
    net = TimmHypercolumnBackbone('resnet18', taps=(2, 4))  # two blocks per stage
    info = net.feature_info
    assert [d['num_chs'] for d in info] == net.out_channels
    assert [d['reduction'] for d in info] == net.strides
    assert [d['module'] for d in info] == ['layer2.0', 'layer2.1', 'layer4.0', 'layer4.1']
    timm_info = {d['module']: d for d in timm.create_model('resnet18').feature_info}
    for d in info:  # the stage's channels and stride as timm reports them
        stage = timm_info[d['module'].split('.')[0]]
        assert (d['num_chs'], d['reduction']) == (stage['num_chs'], stage['reduction'])


@pytest.mark.parametrize('backbone, expected', [
    (dict(type='TimmHypercolumnBackbone', pretrained=True), {'model.backbone.pretrained': False}),
    (dict(type='TimmViTHypercolumnBackbone'), {'model.backbone.pretrained': False}),
    (dict(type='TorchvisionHypercolumnBackbone', weights='IMAGENET1K_V1'),
     {'model.backbone.pretrained': False}),
    (dict(type='NoSuchBackbone'), {}),
])
def test_each_backbone_says_how_to_build_without_weights(backbone, expected):
    from mmengine.config import Config

    from corrkit.models.backbones import random_weights_options
    assert random_weights_options(Config(dict(model=dict(backbone=backbone)))) == expected


def test_a_backbone_without_weights_has_nothing_to_switch_off():
    from corrkit.models.base import Backbone

    class PlainBackbone(Backbone):
        def __init__(self, channels: int = 3):
            super().__init__()
            self.out_channels, self.strides = [channels], [1]

        def forward(self, images):
            return [images]

    assert PlainBackbone.random_weights_options({}) == {}
    assert PlainBackbone().feature_info == [dict(num_chs=3, reduction=1, module='map0')]


def test_a_wrapping_backbone_may_assign_its_models_feature_info():
    """timm wrappers often write ``self.feature_info = model.feature_info``; that keeps working."""
    from corrkit.models.base import Backbone

    class WrapperBackbone(Backbone):
        def __init__(self):
            super().__init__()
            self.out_channels, self.strides = [8], [4]
            self.feature_info = [dict(num_chs=8, reduction=4, module='stem.conv')]

        def forward(self, images):
            return [images]

    net = WrapperBackbone()
    assert net.feature_info == [dict(num_chs=8, reduction=4, module='stem.conv')]
    net.feature_info[0]['module'] = 'changed'  # a copy: the stored description stays
    assert net.feature_info[0]['module'] == 'stem.conv'
