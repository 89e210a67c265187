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
                          stages=(3, 4)),
            correlation=dict(type=builder),
            refiner=dict(type='MatchToMatchRefiner', depth=1, num_heads=2, head_dims=4),
            head=dict(type='KernelSoftArgmaxHead'), input_size=64)
        assert model.refiner.in_channels == 1 and model.refiner.embed.in_features == 1
        with torch.no_grad():
            assert model(torch.randn(1, 2, 3, 64, 64)).shape == (1, 2, 8, 8)
