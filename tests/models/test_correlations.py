"""The single-channel correlation variants of Table A2 against their definitions."""
import torch
import torch.nn.functional as F

from corrkit.models.correlation import (ConcatCorrelation, MeanCorrelation,
                                        MultiChannelCorrelation)
from corrkit.models.matchers import CorrelationMatcher


def feats(seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 8, 6, 6, generator=g, dtype=torch.float64),
            3 * torch.randn(2, 16, 3, 3, generator=g, dtype=torch.float64)]


def test_concat_correlation_is_the_cosine_of_concatenated_layers():
    src, trg = feats(0), feats(1)
    out = ConcatCorrelation(in_channels=[8, 16])(src, trg)
    up = lambda f: F.interpolate(f, size=(6, 6), mode='bilinear', align_corners=True)  # noqa
    s = torch.cat([src[0], up(src[1])], 1).flatten(2)
    t = torch.cat([trg[0], up(trg[1])], 1).flatten(2)
    cos = torch.einsum('bcs,bct->bst', F.normalize(s, dim=1), F.normalize(t, dim=1))
    torch.testing.assert_close(out, cos.clamp(min=0).reshape(2, 1, 6, 6, 6, 6),
                               atol=1e-5, rtol=0)  # eps=1e-5 on the norms
    # not the mean of per-layer cosines: the larger second layer weighs more
    mean = MeanCorrelation(in_channels=[8, 16])(src, trg)
    assert (out - mean).abs().max() > 0.05


def test_mean_correlation_averages_the_multi_channel_map():
    src, trg = feats(2), feats(3)
    multi = MultiChannelCorrelation(in_channels=[8, 16])(src, trg)
    mean = MeanCorrelation(in_channels=[8, 16])
    assert mean.out_channels == 1
    torch.testing.assert_close(mean(src, trg), multi.mean(1, keepdim=True))


def test_single_channel_builders_give_the_refiner_one_channel():
    for builder in ('ConcatCorrelation', 'MeanCorrelation'):
        model = CorrelationMatcher(
            backbone=dict(type='TimmHypercolumnBackbone', model_name='test_resnet',
                          taps=(3, 4)),
            correlation=dict(type=builder),
            refiner=dict(type='MatchToMatchRefiner', depth=1, num_heads=2, head_dims=4),
            head=dict(type='KernelSoftArgmaxHead'), input_size=64)
        assert model.refiner.in_channels == 1 and model.refiner.embed.in_features == 1
        with torch.no_grad():
            assert model(torch.randn(1, 2, 3, 64, 64)).shape == (1, 2, 8, 8)


def reference_multi_channel(src_feats, trg_feats, eps=1e-5):
    """The definition, step by step: normalise, resize, cosine (normalising again), ReLU."""
    from corrkit.ops import cosine_correlation_4d, resize_features
    size = lambda fs: max((f.shape[-2:] for f in fs), key=lambda hw: hw[0] * hw[1])  # noqa
    src = [resize_features(F.normalize(f, dim=1, eps=eps), tuple(size(src_feats)))
           for f in src_feats]
    trg = [resize_features(F.normalize(f, dim=1, eps=eps), tuple(size(trg_feats)))
           for f in trg_feats]
    return torch.stack([cosine_correlation_4d(s, t, eps).clamp(min=0)
                        for s, t in zip(src, trg)], 1)


def test_fast_multi_channel_correlation_equals_the_definition():
    """Scores scaled by inverse norms instead of divided features: same result, fp64 and
    fp32, zero feature vectors included."""
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-6)):
        src, trg = feats(4), feats(5)
        src, trg = [f.to(dtype) for f in src], [f.to(dtype) for f in trg]
        src[0][:, :, 2, 3] = 0  # a position with all-zero features
        out = MultiChannelCorrelation(in_channels=[8, 16])(src, trg)
        torch.testing.assert_close(out, reference_multi_channel(src, trg), atol=tol, rtol=0)


def test_multi_channel_gradients_equal_the_definitions():
    """The written-out backward against autograd through the definition, fp64, with a
    zero feature vector, a tiny one, channels-last maps and a source resized on one
    side only; the features' gradients and the scores' values both."""
    src, trg = feats(6), feats(7)
    trg = [trg[0], F.interpolate(trg[1], size=(6, 6), mode='bilinear')]  # trg: no resize
    src[0][:, :, 1, 1] = 0
    src[0][0, :, 4, 2] *= 1e-8
    src = [src[0].to(memory_format=torch.channels_last), src[1]]
    src = [f.requires_grad_() for f in src]
    trg = [f.detach().requires_grad_() for f in trg]
    weights = torch.randn(2, 2, 6, 6, 6, 6, dtype=torch.float64)
    grads = [torch.autograd.grad((out * weights).sum(), [*src, *trg])
             for out in (MultiChannelCorrelation(in_channels=[8, 16])(src, trg),
                         reference_multi_channel(src, trg))]
    for fast, slow in zip(*grads):
        assert fast.shape == slow.shape
        torch.testing.assert_close(fast, slow, atol=1e-9, rtol=1e-9)


def test_a_side_without_gradient_still_gives_the_other_its_gradient():
    src, trg = feats(8), feats(9)
    src = [f.requires_grad_() for f in src]
    out = MultiChannelCorrelation(in_channels=[8, 16])(src, trg)
    (grad,) = torch.autograd.grad(out.sum(), src[:1])
    assert grad.shape == src[0].shape and grad.abs().sum() > 0


def test_correlation_builders_name_themselves_in_input_errors():
    import pytest
    for cls in (MultiChannelCorrelation, ConcatCorrelation, MeanCorrelation):
        with pytest.raises(ValueError, match=f'{cls.__name__} needs at least one feature map'):
            cls(in_channels=[])
        with pytest.raises(ValueError, match=f'{cls.__name__} expected 2 source and target '
                                             f'maps, got 1 and 2'):
            cls(in_channels=[8, 16])(feats(0)[:1], feats(1))
