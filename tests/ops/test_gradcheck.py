"""Gradients of the functional core and the refiner, checked numerically in float64."""
import torch
from torch.autograd import gradcheck

from corrkit.layers import AdditiveAttention, Rotary4D
from corrkit.models.refiners import MatchToMatchRefiner
from corrkit.ops import (apply_rope_4d, cosine_correlation_4d, grid_positions_4d, interpolate_4d,
                         kernel_soft_argmax, rectified_cosine_scores, transfer_keypoints)

F64 = dict(dtype=torch.float64, requires_grad=True)


def test_cosine_correlation():
    src, trg = torch.randn(1, 3, 2, 2, **F64), torch.randn(1, 3, 2, 3, **F64)
    assert gradcheck(cosine_correlation_4d, (src, trg))


def test_rectified_cosine_scores():
    """The written-out backward, each side raw (one normalisation factor) or not."""
    src, trg = torch.randn(2, 4, 3, **F64), torch.randn(2, 5, 3, **F64)
    for raw in ((True, True), (False, True), (True, False), (False, False)):
        assert gradcheck(lambda s, t: rectified_cosine_scores(s, t, 1e-5, raw), (src, trg))


def test_interpolate_4d():
    corr = torch.randn(1, 1, 2, 2, 2, 3, **F64)
    assert gradcheck(lambda c: interpolate_4d(c, (3, 3, 3, 4)), (corr,))


def test_kernel_soft_argmax():
    base = torch.rand(1, 2, 2, 3, 3, dtype=torch.float64)
    base[..., 1, 1] += 2.0  # a clear peak keeps the argmax fixed under perturbation
    corr = base.requires_grad_()
    assert gradcheck(lambda c: kernel_soft_argmax(c, sigma=1.5, temperature=0.5), (corr,))


def test_transfer_keypoints():
    pred = torch.randn(1, 2, 3, 3, **F64)
    kps = torch.tensor([[[0.1, -0.3], [0.7, 0.6]]], dtype=torch.float64)
    valid = torch.tensor([[True, True]])
    assert gradcheck(lambda p: transfer_keypoints(p, kps, valid, tau=0.8), (pred,))


def test_rope():
    x = torch.randn(2, 4, 8, **F64)
    pos = grid_positions_4d(1, 2, 1, 2, dtype=torch.float64)
    assert gradcheck(lambda t: apply_rope_4d(t, pos), (x,))


def test_additive_attention_and_refiner():
    torch.manual_seed(0)
    attn = AdditiveAttention(4, num_heads=2, head_dims=4, rope=Rotary4D(8)).double()
    x = torch.randn(1, 2 * 2 * 2 * 2, 4, **F64)
    assert gradcheck(lambda t: attn(t, (2, 2, 2, 2)), (x,))
    refiner = MatchToMatchRefiner(in_channels=2, embed_dims=4, depth=1, num_heads=2,
                                  head_dims=4).double()
    corr = torch.rand(1, 2, 2, 2, 2, 2, **F64)
    assert gradcheck(refiner, (corr,))
