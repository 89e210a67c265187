import pytest
import torch

from corrkit.ops.tps import (ThinPlateSpline, homography_transform, invert_points, tps_fit,
                             tps_jacobian, tps_transform, warp_image)


def _grid_ctrl(batch: int, steps: int = 4, extent: float = 90.0, dtype=torch.float64):
    axis = torch.linspace(5.0, 5.0 + extent, steps, dtype=dtype)
    ys, xs = torch.meshgrid(axis, axis, indexing='ij')
    return torch.stack((xs, ys), -1).reshape(1, -1, 2).repeat(batch, 1, 1)


def _random_tps(batch: int = 2, amplitude: float = 4.0, dtype=torch.float64, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    src = _grid_ctrl(batch, dtype=dtype)
    dst = src + amplitude * torch.randn(src.shape, generator=gen, dtype=dtype)
    return src, dst, tps_fit(src, dst)


# float32 parameters round the large, cancelling kernel terms (|w U| ~ 1e3 px over 100 px), so
# float32 interpolates to ~1e-4 px; float64 is exact to rounding.
@pytest.mark.parametrize('dtype, atol', [(torch.float32, 1e-3), (torch.float64, 1e-8)])
def test_tps_interpolates_control_points(dtype, atol):
    gen = torch.Generator().manual_seed(1)
    src = 100 * torch.rand(3, 7, 2, generator=gen, dtype=dtype)
    dst = src + 10 * torch.randn(3, 7, 2, generator=gen, dtype=dtype)
    tps = tps_fit(src, dst)
    assert isinstance(tps, ThinPlateSpline)
    assert tps.weights.dtype == tps.affine.dtype == dtype
    assert tps.weights.shape == (3, 7, 2) and tps.affine.shape == (3, 3, 2)
    out = tps_transform(tps, src)
    assert out.dtype == dtype
    torch.testing.assert_close(out, dst, atol=atol, rtol=0)
    # the spline really bends: a random displacement is not affine
    assert tps.weights.abs().max() > 1e-6


def test_tps_regularisation_smooths_instead_of_interpolating():
    src, dst, _ = _random_tps()
    smooth = tps_fit(src, dst, reg=1e3)
    assert (tps_transform(smooth, src) - dst).abs().max() > 1e-2


def test_affine_control_points_give_zero_weights_and_the_affine_map():
    gen = torch.Generator().manual_seed(2)
    src = 100 * torch.rand(2, 9, 2, generator=gen, dtype=torch.float64)
    matrix = torch.tensor([[1.2, 0.3], [-0.2, 0.9]], dtype=torch.float64)
    shift = torch.tensor([5.0, -7.0], dtype=torch.float64)
    tps = tps_fit(src, src @ matrix.T + shift)
    torch.testing.assert_close(tps.weights, torch.zeros_like(tps.weights), atol=1e-10, rtol=0)
    far = 300 * torch.rand(2, 50, 2, generator=gen, dtype=torch.float64) - 100
    torch.testing.assert_close(tps_transform(tps, far), far @ matrix.T + shift)


def test_tps_jacobian_matches_autograd_and_finite_differences():
    _, _, tps = _random_tps()
    gen = torch.Generator().manual_seed(3)
    points = 100 * torch.rand(2, 30, 2, generator=gen, dtype=torch.float64)
    points = torch.cat((points, tps.ctrl[:, :2]), 1)  # r = 0 must be handled too
    jac = tps_jacobian(tps, points)
    assert jac.shape == (2, 32, 2, 2)
    leaf = points.clone().requires_grad_(True)
    out = tps_transform(tps, leaf)
    rows = [torch.autograd.grad(out[..., o].sum(), leaf, retain_graph=True)[0] for o in range(2)]
    torch.testing.assert_close(jac, torch.stack(rows, -2))
    eps = 1e-5
    for i in range(2):
        delta = torch.zeros(2, dtype=torch.float64)
        delta[i] = eps
        fd = (tps_transform(tps, points + delta) - tps_transform(tps, points - delta)) / (2 * eps)
        torch.testing.assert_close(jac[..., i], fd, atol=1e-5, rtol=1e-5)
    assert torch.isfinite(jac).all()


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_invert_points_recovers_points_through_a_tps(dtype):
    _, _, tps = _random_tps(dtype=dtype)
    gen = torch.Generator().manual_seed(4)
    truth = (10 + 80 * torch.rand(2, 40, 2, generator=gen)).to(dtype)
    targets = tps_transform(tps, truth)
    points, residual = invert_points(lambda p: tps_transform(tps, p),
                                     lambda p: tps_jacobian(tps, p), targets, init=targets)
    assert points.dtype == dtype and residual.shape == (2, 40)
    assert (points - truth).abs().max() < 1e-3
    assert residual.max() < 1e-3
    # a target the map cannot reach within one step reports a large residual
    _, residual = invert_points(lambda p: tps_transform(tps, p), lambda p: tps_jacobian(tps, p),
                                targets, init=targets + 50, iters=1)
    assert residual.max() > 1e-3


def test_invert_points_freezes_points_with_a_singular_jacobian():
    targets = torch.tensor([[[1.0, 1.0], [8.0, 27.0]]])
    points, residual = invert_points(lambda p: p ** 3, lambda p: torch.diag_embed(3 * p ** 2),
                                     targets, init=torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]))
    assert torch.isfinite(points).all()
    assert points[0, 0].tolist() == [0.0, 0.0] and residual[0, 0] > 1
    torch.testing.assert_close(points[0, 1], torch.tensor([2.0, 3.0]))


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_warp_image_translation_shifts_by_whole_pixels(dtype):
    image = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(5)).to(dtype)
    shift = torch.tensor([3.0, 2.0], dtype=dtype)
    out = warp_image(image, lambda p: p + shift, (20, 24))
    assert out.shape == image.shape and out.dtype == dtype
    torch.testing.assert_close(out[..., :-2, :-3], image[..., 2:, 3:], atol=1e-5, rtol=0)
    identity = warp_image(image, lambda p: p, (20, 24))
    torch.testing.assert_close(identity, image, atol=1e-5, rtol=0)


def test_warp_image_output_size_and_padding_mode():
    image = torch.ones(1, 1, 5, 6)
    out = warp_image(image, lambda p: p - 2, (4, 7), padding_mode='zeros')
    assert out.shape == (1, 1, 4, 7)
    assert out[0, 0, 0, 0] == 0 and out[0, 0, 3, 3] == 1
    assert (warp_image(image, lambda p: p - 2, (4, 7)) == 1).all()  # reflection by default


def test_warp_image_with_a_tps_backward_map_samples_where_the_tps_points():
    image = torch.arange(100.0 * 100).view(1, 1, 100, 100)  # y * 100 + x: bilinear is exact
    _, _, tps = _random_tps(batch=1, dtype=torch.float32)
    out = warp_image(image, lambda p: tps_transform(tps, p), (90, 80), padding_mode='border')
    ys, xs = torch.meshgrid(torch.arange(90.0), torch.arange(80.0), indexing='ij')
    source = tps_transform(tps, torch.stack((xs, ys), -1).reshape(1, -1, 2)).clamp(0, 99)
    expected = (source[..., 1] * 100 + source[..., 0]).view(1, 1, 90, 80)
    torch.testing.assert_close(out, expected, atol=2e-2, rtol=0)


def test_homography_identity_translation_and_scale_invariance():
    gen = torch.Generator().manual_seed(6)
    points = 50 * torch.rand(2, 10, 2, generator=gen, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).expand(2, 3, 3)
    torch.testing.assert_close(homography_transform(eye, points), points)
    shift = eye.clone()
    shift[:, :2, 2] = torch.tensor([4.0, -3.0], dtype=torch.float64)
    torch.testing.assert_close(homography_transform(shift, points),
                               points + torch.tensor([4.0, -3.0], dtype=torch.float64))
    projective = eye.clone()
    projective[:, 2, :2] = 0.01
    torch.testing.assert_close(homography_transform(5 * projective, points),
                               homography_transform(projective, points))
    assert homography_transform(projective.float(), points.float()).dtype == torch.float32


@pytest.mark.parametrize('call, name', [
    (lambda: tps_fit(torch.zeros(1, 4, 3), torch.zeros(1, 4, 3)), 'src_ctrl'),
    (lambda: tps_fit(torch.zeros(1, 4, 2), torch.zeros(1, 5, 2)), 'dst_ctrl'),
    (lambda: tps_fit(torch.zeros(1, 2, 2), torch.zeros(1, 2, 2)), 'at least 3'),
    (lambda: tps_fit(torch.zeros(1, 4, 2), torch.zeros(1, 4, 2)), 'singular'),
    (lambda: tps_transform(_random_tps()[2], torch.zeros(3, 4, 2)), 'points'),
    (lambda: tps_jacobian(_random_tps()[2], torch.zeros(2, 4)), 'points'),
    (lambda: invert_points(lambda p: p, lambda p: p, torch.zeros(1, 4, 2), torch.zeros(1, 3, 2)),
     'init'),
    (lambda: invert_points(lambda p: p, lambda p: p, torch.zeros(4, 2), torch.zeros(4, 2)),
     'targets'),
    (lambda: warp_image(torch.zeros(3, 5, 5), lambda p: p, (5, 5)), 'image'),
    (lambda: warp_image(torch.zeros(1, 3, 5, 5), lambda p: p[:, :3], (5, 5)), 'backward_map'),
    (lambda: homography_transform(torch.zeros(1, 2, 3), torch.zeros(1, 4, 2)), 'h'),
    (lambda: homography_transform(torch.eye(3)[None], torch.zeros(2, 4, 2)), 'points'),
])
def test_bad_shapes_raise_value_error_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_warp_image_in_chunks_equals_one_call():
    """Chunks bound a pointwise map's memory; the default maps everything at once."""
    image = torch.rand(2, 3, 9, 11, dtype=torch.float64)
    shift = lambda p: p * 0.9 + torch.tensor([0.5, -0.25], dtype=p.dtype)  # noqa: E731
    calls = []
    counted = lambda p: calls.append(p.shape[1]) or shift(p)  # noqa: E731
    whole = warp_image(image, counted, (7, 8))
    assert calls == [56]
    torch.testing.assert_close(warp_image(image, counted, (7, 8), chunk=10), whole,
                               atol=0, rtol=0)
    assert calls[1:] == [10, 10, 10, 10, 10, 6]
