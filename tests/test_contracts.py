"""Every registered component, built small and run through :mod:`corrkit.testing`.

The checkers are the ones plugin authors call; CASES only says how to build each
component small. A component registered without an entry in CASES (when it needs
arguments beyond the injected ones) fails ``test_every_component_builds``, so new
components cannot skip these tests.
"""
import pytest
import torch

from corrkit.registry import (BACKBONES, CORRELATIONS, FLOW_HEADS, KEYPOINT_HEADS, LOSSES, NECKS,
                              REFINERS)
from corrkit.testing import (check_backbone, check_correlation, check_head, check_keypoint_head,
                             check_loss, check_neck, check_refiner)

# Constructor arguments that keep each component tiny; injected sizes are added by the tests.
CASES = {
    'TimmHypercolumnBackbone': dict(model_name='test_resnet', taps=(2, 3, 4)),
    'TimmViTHypercolumnBackbone': dict(model_name='test_vit', taps=(1, 3)),  # 6 blocks, p 16
    'TorchvisionHypercolumnBackbone': dict(model_name='mobilenet_v2', pretrained=False,
                                           taps=['features.4', 'features.7']),
    'MatchToMatchRefiner': dict(depth=2, num_heads=2, head_dims=4),
    'NCNetRefiner': dict(channels=(4, 1), kernel_sizes=(3, 3)),
    'AggregationNeck': dict(out_channels=16, num_blocks=1, norm_groups=2, upsample=2),
}


def names(registry):
    registry.import_from_location()
    return sorted(registry.module_dict)


def build(registry, name, **derived):
    return registry.build(dict(type=name, **CASES.get(name, {}), **derived))


@pytest.mark.parametrize('name', names(BACKBONES))
def test_backbone_contract(name):
    check_backbone(build(BACKBONES, name).eval())


@pytest.mark.parametrize('name', names(BACKBONES))
def test_backbone_freeze_and_norm_eval(name):
    net = build(BACKBONES, name, freeze=True, norm_eval=True).train()
    assert not any(p.requires_grad for p in net.parameters())
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    images = torch.rand(2, 3, 32, 32)
    if norms:  # BatchNorm backbones: statistics stay frozen
        assert not any(m.training for m in norms)
        before = [m.running_mean.clone() for m in norms]
        net(images)
        assert all(torch.equal(b, m.running_mean) for b, m in zip(before, norms))
    else:  # no BatchNorm (vision transformers): a training-mode forward changes nothing
        feats = net(images)
        assert all(torch.equal(a, b) for a, b in zip(feats, net.eval()(images)))


@pytest.mark.parametrize('name', names(BACKBONES))
def test_frozen_backbone_stays_in_eval_mode(name):
    """``freeze`` alone fixes the features: no gradients, no BatchNorm statistic updates."""
    net = build(BACKBONES, name, freeze=True).train()
    assert not any(m.training for m in net.modules())
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    before = [m.running_mean.clone() for m in norms]
    net(torch.rand(2, 3, 32, 32))
    assert all(torch.equal(b, m.running_mean) for b, m in zip(before, norms))
    trainable = build(BACKBONES, name, norm_eval=True).train()
    assert trainable.training and all(p.requires_grad for p in trainable.parameters())


@pytest.mark.parametrize('name', names(NECKS))
def test_neck_contract(name):
    # two maps at two strides, as a hypercolumn backbone gives (upsampling factors divide both)
    check_neck(build(NECKS, name, in_channels=[8, 16], in_strides=[8, 16]))


@pytest.mark.parametrize('name', names(CORRELATIONS))
def test_correlation_contract(name):
    # every built-in builder correlates on the finest source and target grids
    check_correlation(build(CORRELATIONS, name, in_channels=[8, 8, 16]),
                      source_size=(6, 6), target_size=(5, 5), grid=(6, 6, 5, 5))


@pytest.mark.parametrize('name', names(REFINERS))
def test_refiner_contract(name):
    check_refiner(build(REFINERS, name, in_channels=3))


@pytest.mark.parametrize('name', names(FLOW_HEADS))
def test_flow_head_contract(name):
    check_head(build(FLOW_HEADS, name, in_channels=1))


@pytest.mark.parametrize('name', names(FLOW_HEADS))
def test_flow_head_rejects_multi_channel_input(name):
    with pytest.raises(ValueError, match='single correlation channel'):
        build(FLOW_HEADS, name, in_channels=3)


@pytest.mark.parametrize('name', names(KEYPOINT_HEADS))
def test_keypoint_head_contract(name):
    check_keypoint_head(build(KEYPOINT_HEADS, name))


@pytest.mark.parametrize('name', names(LOSSES))
def test_loss_contract(name):
    check_loss(build(LOSSES, name))


def test_every_component_builds():
    """Guards CASES: every registered component can be built with it."""
    for registry, derived in [(BACKBONES, {}), (CORRELATIONS, dict(in_channels=[4])),
                              (REFINERS, dict(in_channels=3)), (FLOW_HEADS, dict(in_channels=1)),
                              (NECKS, dict(in_channels=[4], in_strides=[8])),
                              (KEYPOINT_HEADS, {}), (LOSSES, {})]:
        for name in names(registry):
            assert build(registry, name, **derived) is not None, name


def test_multi_channel_correlation_equals_per_layer_cosine():
    from corrkit.models.correlation import MultiChannelCorrelation
    from corrkit.ops import cosine_correlation_4d
    src = [torch.randn(1, 8, 6, 6), torch.randn(1, 16, 3, 3)]
    trg = [torch.randn(1, 8, 6, 6), torch.randn(1, 16, 3, 3)]
    out = MultiChannelCorrelation(in_channels=[8, 16])(src, trg)
    resize = lambda f: torch.nn.functional.interpolate(  # noqa: E731
        torch.nn.functional.normalize(f, dim=1), size=(6, 6), mode='bilinear', align_corners=True)
    tol = dict(atol=1e-4, rtol=0)  # eps of the two normalisations
    torch.testing.assert_close(out[:, 0], cosine_correlation_4d(src[0], trg[0]).clamp(min=0), **tol)
    torch.testing.assert_close(
        out[:, 1], cosine_correlation_4d(resize(src[1]), resize(trg[1])).clamp(min=0), **tol)
    assert out.min() == 0 and out.max() > 0.5


def test_match_to_match_refiner_sees_positions():
    """Without a position embedding, token-wise layers and global pooling commute with any
    reordering of the grid; the 4D rotary embedding must break that."""
    from corrkit.layers import Rotary4D
    from corrkit.models.refiners import MatchToMatchRefiner
    torch.manual_seed(0)
    refiner = MatchToMatchRefiner(in_channels=3, depth=1, num_heads=2, head_dims=4)
    corr = torch.rand(1, 3, 3, 3, 3, 3)
    flipped = refiner(corr.flip(-1)).flip(-1)
    assert not torch.allclose(refiner(corr), flipped, atol=1e-6)
    for block in refiner.blocks:
        assert isinstance(block.attn.rope, Rotary4D)
        block.attn.rope = None
    torch.testing.assert_close(refiner(corr), refiner(corr.flip(-1)).flip(-1))


def test_flow_heads_refuse_fractional_upsampling():
    with pytest.raises(ValueError, match='integer'):
        FLOW_HEADS.build(dict(type='KernelSoftArgmaxHead', upsample_factor=1.5))
