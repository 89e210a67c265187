import pytest
import torch
from torch import nn

from corrkit.apis import init_matcher
from corrkit.models.base import ConfigConflictError, Refiner
from corrkit.registry import MODELS
from corrkit.structures import PairDataSample

from ..conftest import TINY_MATCHER as TINY
from ..conftest import random_samples
from corrkit.errors import ContractError



def samples(n_kps=(3, 5), size=32):
    return random_samples(n_kps, size)


def test_modes():
    torch.manual_seed(0)
    model = MODELS.build(TINY)
    inputs = torch.randn(2, 2, 3, 32, 32)
    flow = model(inputs, mode='tensor')
    assert flow.shape == (2, 2, 8, 8)  # stride-8 grid of 32 px, upsampled twice

    losses = model(inputs, samples(), mode='loss')
    assert set(losses) == {'loss_kps'} and torch.isfinite(losses['loss_kps'])
    losses['loss_kps'].backward()
    assert model.refiner.embed.weight.grad.abs().sum() > 0
    assert next(model.backbone.parameters()).grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        preds = model(inputs, samples(), mode='predict')
    assert [p.pred_trg_kps.shape for p in preds] == [(3, 2), (5, 2)]
    assert preds[0].pred_flow.shape == (2, 8, 8)
    assert all(((p.pred_trg_kps >= -0.5) & (p.pred_trg_kps <= 31.5)).all() for p in preds)


def test_loss_depends_only_on_valid_keypoints():
    torch.manual_seed(0)
    model = MODELS.build(TINY)
    inputs = torch.randn(1, 2, 3, 32, 32)
    a = samples((4,))
    b = [PairDataSample(src_kps=a[0].src_kps, trg_kps=a[0].trg_kps.clone(),
                        kps_valid=a[0].kps_valid)]
    b[0].trg_kps[0] += 100.0  # keypoint 0 is invalid: moving it changes nothing
    torch.testing.assert_close(model(inputs, a, mode='loss')['loss_kps'],
                               model(inputs, b, mode='loss')['loss_kps'])


def test_derived_sizes_are_injected():
    model = MODELS.build(TINY)
    assert model.correlation.in_channels == model.backbone.out_channels
    assert model.refiner.in_channels == len(model.backbone.out_channels)


def test_conflicting_config_value_raises():
    cfg = {**TINY, 'refiner': {**TINY['refiner'], 'in_channels': 7}}
    with pytest.raises(ConfigConflictError, match=r'MatchToMatchRefiner.in_channels=7'):
        MODELS.build(cfg)
    agreeing = {**TINY, 'refiner': {**TINY['refiner'], 'in_channels': 2}}
    assert MODELS.build(agreeing).refiner.in_channels == 2


class BrokenRefiner(Refiner):
    """Forgets to keep the 4D grid."""

    def __init__(self):
        super().__init__()
        self.in_channels, self.out_channels = 2, 1

    def forward(self, corr):
        return corr.mean(1, keepdim=True)[..., :1]


def test_contract_violation_names_the_class():
    model = MODELS.build({**TINY, 'refiner': BrokenRefiner()})
    with pytest.raises(ContractError, match=r'BrokenRefiner .* Refiner contract'):
        model(torch.randn(1, 2, 3, 32, 32))


def test_component_outside_its_role_is_rejected():
    with pytest.raises(TypeError, match='used as the Refiner .* does not subclass corrkit.models.base.Refiner'):
        MODELS.build({**TINY, 'refiner': nn.Identity()})


def test_wrong_input_shape_is_explained():
    model = MODELS.build(TINY)
    with pytest.raises(ValueError, match=r'\(B, 2, 3, H, W\)'):
        model(torch.randn(2, 3, 32, 32))
    with pytest.raises(ValueError, match='data_samples'):
        model(torch.randn(1, 2, 3, 32, 32), mode='loss')


def test_flagship_shapes_and_sizes(repo):
    model = init_matcher(repo / 'configs' / 'transformatcher_spair.py',
                         cfg_options={'model.backbone.pretrained': False})
    assert model.correlation.out_channels == 26
    assert len(model.backbone.out_channels) == 26
    n_refiner = sum(p.numel() for p in model.refiner.parameters())
    assert 25_000 <= n_refiner <= 28_000
    with torch.no_grad():
        out = model.correspond(*model.encode_pairs(torch.randn(1, 2, 3, 240, 240)))
    assert out.corr.shape == (1, 26, 15, 15, 15, 15)
    assert out.flow.shape == (1, 2, 30, 30)
    assert out.probs.shape == (1, 30, 30, 30, 30)


def test_loss_is_zero_when_targets_are_the_predictions():
    torch.manual_seed(0)
    model = MODELS.build({**TINY, 'train_tau': 0.05, 'test_tau': 0.05}).eval()
    inputs = torch.randn(2, 2, 3, 32, 32)
    with torch.no_grad():
        preds = model(inputs, samples(), mode='predict')
        for p in preds:
            p.trg_kps = p.pred_trg_kps
        assert model(inputs, preds, mode='loss')['loss_kps'] < 1e-10
        for p in preds:
            p.trg_kps = p.pred_trg_kps + 3.1  # 0.2 normalised units (31 px = 2) off in x and y
        assert model(inputs, preds, mode='loss')['loss_kps'] == pytest.approx(0.08, rel=1e-3)


def test_keypoint_fields_are_validated():
    model = MODELS.build(TINY)
    inputs = torch.randn(1, 2, 3, 32, 32)
    no_targets = [PairDataSample(src_kps=torch.rand(3, 2) * 31)]
    with pytest.raises(ValueError, match='data sample 0 has no trg_kps'):
        model(inputs, no_targets, mode='loss')
    assert model.eval()(inputs, no_targets, mode='predict')[0].pred_trg_kps.shape == (3, 2)
    uneven = [PairDataSample(src_kps=torch.rand(3, 2), trg_kps=torch.rand(4, 2))]
    with pytest.raises(ValueError, match='data sample 0 has keypoint fields of different lengths'):
        model(inputs, uneven, mode='loss')


def test_grey_inputs_are_refused_before_the_backbone():
    with pytest.raises(ValueError, match='RGB image pairs'):
        MODELS.build(TINY)(torch.randn(1, 2, 1, 32, 32))


def test_training_works_after_an_inference_mode_pass():
    model = MODELS.build(TINY)
    inputs = torch.randn(1, 2, 3, 32, 32)
    with torch.inference_mode():
        model(inputs)
    model(inputs, samples((3,)), mode='loss')['loss_kps'].backward()
    assert model.refiner.embed.weight.grad is not None


def test_residual_mean_refiner_starts_as_the_mean_refiner():
    from corrkit.registry import REFINERS
    corr = torch.rand(2, 5, 3, 3, 4, 4)
    refiner = REFINERS.build(dict(type='MatchToMatchRefiner', in_channels=5, depth=1,
                                  num_heads=2, head_dims=4, residual_mean=True))
    mean = REFINERS.build(dict(type='MeanRefiner', in_channels=5))
    torch.testing.assert_close(refiner(corr), mean(corr))
    refiner.readout.bias.data.fill_(0.5)  # once trained, the read-out adds its correction
    torch.testing.assert_close(refiner(corr), mean(corr) + 0.5)


def test_channels_last_backbone_gives_the_same_matches():
    from corrkit.apis import init_matcher
    torch.manual_seed(0)
    fast = init_matcher('configs/transformatcher_tiny.py')
    plain = init_matcher('configs/transformatcher_tiny.py',
                         cfg_options={'model.channels_last': False})
    plain.load_state_dict(fast.state_dict())
    conv = next(p for p in fast.backbone.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    x = torch.randn(2, 2, 3, *fast.input_size)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), atol=1e-5, rtol=1e-5)


def test_stage_methods_compose_into_correspond_and_predict():
    """The public stages chain to what correspond and predict give, bit for bit."""
    torch.manual_seed(0)
    model = MODELS.build(TINY).eval()
    inputs = torch.randn(2, 2, 3, 32, 32)
    with torch.no_grad():
        src_feats, trg_feats = model.encode_pairs(inputs)
        src, trg = list(src_feats.maps), list(trg_feats.maps)
        alone = model.backbone(inputs[:, 1].contiguous())  # the target images on their own
        for feat, ref in zip(trg, alone):
            torch.testing.assert_close(feat, ref, atol=1e-5, rtol=1e-5)
        assert [f.shape[0] for f in src] == [2] * len(model.backbone.out_channels)
        corr = model.correlate(src, trg)
        refined = model.refine(corr)
        pred = model.predict_flow(refined)
        out = model.correspond(src_feats, trg_feats)
        assert torch.equal(corr, out.corr) and torch.equal(refined, out.refined)
        assert torch.equal(pred.flow, out.flow) and torch.equal(pred.probs, out.probs)
        data = model(inputs, samples(), mode='predict')
        for i, sample in enumerate(data):
            kps = sample.src_kps[None]
            moved = model.transfer(out.flow[i:i + 1], kps, inputs.shape[-2:],
                                   sample.kps_valid[None])
            assert torch.equal(moved[0], sample.pred_trg_kps)


def test_backbone_input_is_both_images_of_each_pair_in_the_matchers_format():
    model = MODELS.build(TINY)
    inputs = torch.randn(2, 2, 3, 32, 32)
    images = model.backbone_input(inputs)
    assert images.shape == (4, 3, 32, 32)
    assert torch.equal(images[1], inputs[0, 1]) and torch.equal(images[2], inputs[1, 0])
    assert images.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match=r'\(B, 2, 3, H, W\)'):
        model.encode_pairs(torch.randn(2, 3, 32, 32))


def test_identity_neck_changes_nothing():
    torch.manual_seed(0)
    plain = MODELS.build(TINY).eval()
    with_neck = MODELS.build({**TINY, 'neck': dict(type='IdentityNeck')}).eval()
    assert type(with_neck.neck).__name__ == 'IdentityNeck' and plain.neck is None
    with_neck.load_state_dict(plain.state_dict())  # an identity neck has no state of its own
    inputs = torch.randn(2, 2, 3, 32, 32)
    with torch.no_grad():
        a = plain.correspond(*plain.encode_pairs(inputs))
        b = with_neck.correspond(*with_neck.encode_pairs(inputs))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_aggregation_neck_feeds_the_correlation_and_trains():
    torch.manual_seed(0)
    neck = dict(type='AggregationNeck', out_channels=16, num_blocks=1, norm_groups=2, upsample=2)
    model = MODELS.build({**TINY, 'neck': neck})
    # derived: the backbone's maps into the neck, the neck's one map into the correlation
    assert model.neck.in_channels == model.backbone.out_channels
    assert model.neck.in_strides == model.backbone.strides == [8, 16]
    assert model.correlation.in_channels == [16] and model.refiner.in_channels == 1
    assert model.feature_sizes(32, 32) == [(8, 8)]  # the stride-8 grid of 4 x 4, upsampled twice
    inputs = torch.randn(2, 2, 3, 32, 32)
    assert model(inputs).shape == (2, 2, 16, 16)  # the head upsamples twice more
    model(inputs, samples(), mode='loss')['loss_kps'].backward()
    for name in ('layer_logits', 'projections.0.weight', 'projections.1.weight',
                 'blocks.0.body.6.weight'):
        grad = model.neck.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_neck_breaking_its_contract_is_named():
    from corrkit.models.necks import IdentityNeck

    class ShrinkingNeck(IdentityNeck):
        def forward(self, feats):
            return [f[..., :-1] for f in feats]

    model = MODELS.build({**TINY, 'neck': ShrinkingNeck(in_channels=[16, 32],
                                                        in_strides=[8, 16])})
    with pytest.raises(ContractError, match=r'ShrinkingNeck .* breaks the Neck contract'):
        model(torch.randn(1, 2, 3, 32, 32))


def test_neck_config_contradicting_the_backbone_raises():
    cfg = {**TINY, 'neck': dict(type='IdentityNeck', in_strides=[4, 8])}
    with pytest.raises(ConfigConflictError, match=r'IdentityNeck.in_strides=\[4, 8\]'):
        MODELS.build(cfg)
