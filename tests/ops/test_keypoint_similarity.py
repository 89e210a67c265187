import pytest
import torch
import torch.nn.functional as F

from corrkit.ops import (cosine_correlation_4d, keypoint_similarity, normalized_to_pixel,
                         sample_features)


def bilinear_direct(feat, x, y):
    """The feature at pixel (x, y) of a (C, H, W) map, by the textbook formula."""
    x0, y0 = int(x), int(y)
    x1, y1 = min(x0 + 1, feat.shape[-1] - 1), min(y0 + 1, feat.shape[-2] - 1)
    ax, ay = x - x0, y - y0
    return ((1 - ax) * (1 - ay) * feat[:, y0, x0] + ax * (1 - ay) * feat[:, y0, x1]
            + (1 - ax) * ay * feat[:, y1, x0] + ax * ay * feat[:, y1, x1])


def test_sample_features_matches_the_direct_bilinear_formula():
    torch.manual_seed(0)
    feat = torch.randn(2, 3, 5, 7, dtype=torch.float64)
    kps = torch.rand(2, 4, 2, dtype=torch.float64) * 2 - 1
    out = sample_features(feat, kps)
    assert out.shape == (2, 4, 3) and out.dtype == torch.float64
    pixels = normalized_to_pixel(kps, (5, 7))  # align_corners: -1/+1 are the end cell centres
    for b in range(2):
        for k in range(4):
            x, y = pixels[b, k].tolist()
            torch.testing.assert_close(out[b, k], bilinear_direct(feat[b], x, y))


def test_keypoint_similarity_matches_loops():
    torch.manual_seed(0)
    src, trg = torch.randn(2, 6, 4, 5), torch.randn(2, 6, 3, 7)
    kps = torch.rand(2, 3, 2) * 2 - 1
    sim = keypoint_similarity(src, kps, trg)
    assert sim.shape == (2, 3, 3, 7)
    unit = F.normalize(src, dim=1)
    pixels = normalized_to_pixel(kps, (4, 5))
    for b in range(2):
        for k in range(3):
            feature = bilinear_direct(unit[b], *pixels[b, k].tolist())
            for yt in range(3):
                for xt in range(7):
                    expected = F.cosine_similarity(feature, trg[b, :, yt, xt], dim=0)
                    torch.testing.assert_close(sim[b, k, yt, xt], expected, atol=1e-4, rtol=0)
    assert sim.abs().max() <= 1 + 1e-5


def test_on_cell_centres_it_is_a_row_of_the_4d_correlation():
    torch.manual_seed(0)
    src, trg = torch.randn(1, 8, 3, 4), torch.randn(1, 8, 5, 2)
    kps = torch.tensor([[[-1.0, -1.0], [1 / 3, 0.0], [1.0, 1.0]]])  # cells (0,0), (2,1), (3,2)
    corr = cosine_correlation_4d(src, trg)
    sim = keypoint_similarity(src, kps, trg)
    for k, (xs, ys) in enumerate([(0, 0), (2, 1), (3, 2)]):
        torch.testing.assert_close(sim[0, k], corr[0, ys, xs], atol=1e-5, rtol=0)


def test_gradients_reach_both_maps():
    src = torch.randn(1, 4, 3, 3, dtype=torch.float64, requires_grad=True)
    trg = torch.randn(1, 4, 2, 3, dtype=torch.float64, requires_grad=True)
    kps = torch.tensor([[[0.3, -0.2]]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda s, t: keypoint_similarity(s, kps, t), (src, trg))


def test_dtype_and_device_follow_the_features():
    src = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    sim = keypoint_similarity(src, torch.zeros(1, 2, 2), src)  # float32 points
    assert sim.dtype == torch.float64 and sim.device == src.device
    if torch.cuda.is_available():
        gpu = src.cuda().half()
        assert keypoint_similarity(gpu, torch.zeros(1, 2, 2).cuda(), gpu).dtype == torch.float16


def test_zero_features_and_bad_shapes():
    zeros = torch.zeros(1, 4, 2, 2)
    sim = keypoint_similarity(zeros, torch.zeros(1, 1, 2), torch.randn(1, 4, 2, 2))
    assert sim.abs().max() == 0
    with pytest.raises(ValueError, match='channel'):
        keypoint_similarity(zeros, torch.zeros(1, 1, 2), torch.randn(1, 5, 2, 2))
    with pytest.raises(ValueError, match=r'\(B, K, 2\)'):
        sample_features(zeros, torch.zeros(1, 2))
