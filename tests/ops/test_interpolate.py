import pytest
import torch
import torch.nn.functional as F

from corrkit.ops import interpolate_4d


def linear_matrix(n_in: int, n_out: int) -> torch.Tensor:
    """1D linear interpolation (align_corners) as an (n_out, n_in) matrix."""
    eye = torch.eye(n_in, dtype=torch.float64)[None]
    return F.interpolate(eye, size=n_out, mode='linear', align_corners=True)[0].T


def test_equals_separable_2d_bilinear_passes():
    corr = torch.rand(2, 3, 3, 4, 5, 2, dtype=torch.float64)
    out = interpolate_4d(corr, (5, 7, 9, 3))
    # reference 1: the 4D kernel as a product of four 1D interpolation matrices
    a, b, c, d = (linear_matrix(i, o) for i, o in zip((3, 4, 5, 2), (5, 7, 9, 3)))
    ref = torch.einsum('blpqrs,ip,jq,kr,ms->blijkm', corr, a, b, c, d)
    torch.testing.assert_close(out, ref)
    # reference 2: explicit 2D bilinear over the target dims of each source cell, then the source dims
    step = torch.stack([torch.stack([
        F.interpolate(corr[:, :, i, j], size=(9, 3), mode='bilinear', align_corners=True)
        for j in range(4)], 2) for i in range(3)], 2)
    ref2 = torch.stack([torch.stack([
        F.interpolate(step[..., k, m], size=(5, 7), mode='bilinear', align_corners=True)
        for m in range(3)], -1) for k in range(9)], -2)
    torch.testing.assert_close(out, ref2)


def test_same_size_is_identity_and_corners_are_kept():
    corr = torch.rand(1, 1, 3, 3, 3, 3)
    assert torch.equal(interpolate_4d(corr, (3, 3, 3, 3)), corr)
    up = interpolate_4d(corr, (5, 5, 5, 5))
    torch.testing.assert_close(up[..., 0, 0, 0, 0], corr[..., 0, 0, 0, 0])
    torch.testing.assert_close(up[..., -1, -1, -1, -1], corr[..., -1, -1, -1, -1])


def test_bad_rank_raises():
    with pytest.raises(ValueError, match='B, L, Hs, Ws, Ht, Wt'):
        interpolate_4d(torch.rand(1, 3, 3, 3, 3), (4, 4, 4, 4))
