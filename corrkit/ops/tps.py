"""Thin-plate splines, Newton inversion of smooth maps, and image warping.

Points are ``(x, y)`` pixels, pixel centres at integers (:mod:`corrkit.ops.coords`).
Splines are solved and evaluated in float64 because their kernel terms (``r^2 log r^2``,
~1e3 px over 100 px) cancel to a few pixels; results come back in the input dtype, so
float32 parameters interpolate their control points to about 1e-4 px.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .coords import pixel_to_normalized

__all__ = ['ThinPlateSpline', 'homography_transform', 'invert_points', 'tps_fit', 'tps_jacobian',
           'tps_transform', 'warp_image']

PointMap = Callable[[Tensor], Tensor]


class ThinPlateSpline(NamedTuple):
    """``f(p) = [1, x, y] @ affine + sum_i U(|p - ctrl_i|^2) weights_i``, ``U(d2) = d2 log d2``.

    Shapes: ctrl ``(B, N, 2)``, weights ``(B, N, 2)``, affine ``(B, 3, 2)``.
    """

    ctrl: Tensor
    weights: Tensor
    affine: Tensor


def _require(ok: bool, name: str, expected: str, tensor: Tensor) -> None:
    if not ok:
        raise ValueError(f'{name} must have shape {expected}, got {tuple(tensor.shape)}')


def _check_points(name: str, points: Tensor, batch: int | None = None) -> None:
    ok = points.dim() == 3 and points.shape[-1] == 2 and batch in (None, points.shape[0])
    _require(ok, name, '(B, M, 2)' if batch is None else f'({batch}, M, 2)', points)


def _safe_log(d2: Tensor) -> Tensor:
    """``log(d2)``, finite (with a finite gradient) at 0, where callers mask it out."""
    return torch.log(d2.clamp(min=torch.finfo(d2.dtype).tiny))


def _kernel(d2: Tensor) -> Tensor:
    return torch.where(d2 > 0, d2 * _safe_log(d2), torch.zeros_like(d2))


def _offsets(points: Tensor, ctrl: Tensor) -> Tensor:
    return points.double()[:, :, None, :] - ctrl.double()[:, None, :, :]


def _squared_distances(points: Tensor, ctrl: Tensor) -> Tensor:
    """``(B, M, N)`` squared distances, without the ``(B, M, N, 2)`` offsets (large M)."""
    p, c = points.double(), ctrl.double()
    return ((p[:, :, None, 0] - c[:, None, :, 0]).square() +
            (p[:, :, None, 1] - c[:, None, :, 1]).square())


def tps_fit(src_ctrl: Tensor, dst_ctrl: Tensor, reg: float = 0.0) -> ThinPlateSpline:
    """Fit thin-plate splines ``f`` with ``f(src_ctrl[i]) = dst_ctrl[i]``.

    Solves the standard ``(N + 3) x (N + 3)`` system ``[[K + reg I, P], [P^T, 0]]``
    with ``K_ij = U(|c_i - c_j|^2)`` and ``P = [1, x, y]``.

    Args:
        src_ctrl: Control points in the domain, pixels.
        dst_ctrl: Where each control point must map to, pixels.
        reg: Smoothing added to the kernel diagonal; ``0`` interpolates exactly.

    Returns:
        The spline parameters, in the dtype of ``src_ctrl``.

    Shape:
        - src_ctrl: ``(B, N, 2)``, ``N >= 3``
        - dst_ctrl: ``(B, N, 2)``

    Raises:
        ValueError: On bad shapes, ``N < 3``, or a singular system (duplicated points).

    Examples:
        >>> src = torch.tensor([[[0.0, 0.0], [9.0, 0.0], [0.0, 9.0], [9.0, 9.0]]])
        >>> tps = tps_fit(src, src + torch.tensor([2.0, -1.0]))
        >>> tps.affine.round(decimals=4) + 0.0
        tensor([[[ 2., -1.],
                 [ 1.,  0.],
                 [ 0.,  1.]]])
    """
    _check_points('src_ctrl', src_ctrl)
    _require(dst_ctrl.shape == src_ctrl.shape, 'dst_ctrl', f'{tuple(src_ctrl.shape)}', dst_ctrl)
    batch, num = src_ctrl.shape[:2]
    if num < 3:
        raise ValueError(f'src_ctrl needs at least 3 control points, got {num}')
    kernel = _kernel(_offsets(src_ctrl, src_ctrl).pow(2).sum(-1))
    kernel = kernel + reg * torch.eye(num, dtype=kernel.dtype, device=kernel.device)
    poly = torch.cat((torch.ones_like(kernel[..., :1]), src_ctrl.double()), -1)
    lower = torch.cat((poly.mT, kernel.new_zeros(batch, 3, 3)), -1)
    system = torch.cat((torch.cat((kernel, poly), -1), lower), -2)
    rhs = torch.cat((dst_ctrl.double(), kernel.new_zeros(batch, 3, 2)), -2)
    solution, info = torch.linalg.solve_ex(system, rhs)
    if (info != 0).any():
        raise ValueError('tps_fit: singular system; src_ctrl has duplicated or collinear points')
    weights, affine = solution.to(src_ctrl.dtype).split((num, 3), dim=1)
    return ThinPlateSpline(src_ctrl, weights, affine)


def tps_transform(tps: ThinPlateSpline, points: Tensor) -> Tensor:
    """Evaluate thin-plate splines at ``points``.

    Args:
        tps: Splines from :func:`tps_fit`.
        points: Where to evaluate, pixels.

    Returns:
        ``f(points)`` in the dtype of ``points``.

    Shape:
        - points: ``(B, M, 2)``
        - output: ``(B, M, 2)``

    Raises:
        ValueError: If ``points`` is not ``(B, M, 2)`` with the batch of ``tps``.

    Examples:
        >>> src = torch.tensor([[[0.0, 0.0], [9.0, 0.0], [0.0, 9.0], [9.0, 9.0]]])
        >>> tps = tps_fit(src, src + 1)
        >>> tps_transform(tps, torch.tensor([[[4.0, 5.0]]]))
        tensor([[[5., 6.]]])
    """
    _check_points('points', points, tps.ctrl.shape[0])
    bend = _kernel(_squared_distances(points, tps.ctrl)) @ tps.weights.double()
    const, linear = tps.affine.double().split((1, 2), dim=1)
    return (const + points.double() @ linear + bend).to(points.dtype)


def tps_jacobian(tps: ThinPlateSpline, points: Tensor) -> Tensor:
    """Analytic Jacobian of thin-plate splines at ``points``.

    Uses ``dU/dx = 2 dx (log r^2 + 1)``, which tends to 0 at ``r = 0``.

    Args:
        tps: Splines from :func:`tps_fit`.
        points: Where to differentiate, pixels.

    Returns:
        ``J[b, m, o, i] = d f_o / d p_i``: rows are output ``(x, y)``, columns input ``(x, y)``.

    Shape:
        - points: ``(B, M, 2)``
        - output: ``(B, M, 2, 2)``

    Raises:
        ValueError: If ``points`` is not ``(B, M, 2)`` with the batch of ``tps``.

    Examples:
        >>> src = torch.tensor([[[0.0, 0.0], [9.0, 0.0], [0.0, 9.0], [9.0, 9.0]]])
        >>> tps = tps_fit(src, 2 * src)
        >>> tps_jacobian(tps, torch.tensor([[[3.0, 4.0]]])).round(decimals=4) + 0.0
        tensor([[[[2., 0.],
                  [0., 2.]]]])
    """
    _check_points('points', points, tps.ctrl.shape[0])
    offsets = _offsets(points, tps.ctrl)
    d2 = offsets.pow(2).sum(-1, keepdim=True)
    grad_kernel = torch.where(d2 > 0, 2 * offsets * (_safe_log(d2) + 1), torch.zeros_like(offsets))
    bend = torch.einsum('bmni,bno->bmoi', grad_kernel, tps.weights.double())
    return (bend + tps.affine.double()[:, None, 1:].mT).to(points.dtype)


def invert_points(forward_fn: PointMap, jacobian_fn: PointMap, targets: Tensor, init: Tensor,
                  iters: int = 20, tol: float = 1e-4) -> tuple[Tensor, Tensor]:
    """Solve ``forward_fn(p) = targets`` for ``p`` with Newton's method.

    Points stop moving once their residual is below ``tol``, or when their Jacobian
    is singular; check the returned residual to drop points that did not converge.

    Args:
        forward_fn: ``(B, M, 2)`` to ``(B, M, 2)``, e.g. ``lambda p: tps_transform(tps, p)``.
        jacobian_fn: Its Jacobian, ``(B, M, 2)`` to ``(B, M, 2, 2)``.
        targets: Values to reach, pixels.
        init: Starting points, pixels.
        iters: Maximum number of Newton steps.
        tol: Residual norm, in pixels, at which a point counts as converged.

    Returns:
        The points and the norm of their final residual ``|forward_fn(p) - targets|``.

    Shape:
        - targets, init: ``(B, M, 2)``
        - output: ``(B, M, 2)`` and ``(B, M)``

    Raises:
        ValueError: If ``targets`` or ``init`` are not ``(B, M, 2)`` or differ.

    Examples:
        >>> cube, cube_jacobian = (lambda p: p ** 3), (lambda p: torch.diag_embed(3 * p ** 2))
        >>> points, residual = invert_points(cube, cube_jacobian, torch.tensor([[[8.0, 27.0]]]),
        ...                                  init=torch.ones(1, 1, 2))
        >>> points.round(decimals=3), bool(residual.max() < 1e-4)
        (tensor([[[2., 3.]]]), True)
    """
    _check_points('targets', targets)
    _require(init.shape == targets.shape, 'init', f'{tuple(targets.shape)}', init)
    points = init
    for _ in range(iters):
        residual = forward_fn(points) - targets
        done = residual.norm(dim=-1, keepdim=True) < tol
        if done.all():
            break
        step, info = torch.linalg.solve_ex(jacobian_fn(points), residual)
        frozen = done | (info[..., None] != 0) | ~step.isfinite().all(-1, keepdim=True)
        points = torch.where(frozen, points, points - step)
    return points, (forward_fn(points) - targets).norm(dim=-1)


def warp_image(image: Tensor, backward_map: PointMap, out_size: tuple[int, int],
               mode: str = 'bilinear', padding_mode: str = 'reflection',
               chunk: int | None = None) -> Tensor:
    """Warp images by sampling them where a backward map sends each output pixel.

    Args:
        image: Images to warp.
        backward_map: Maps output pixel points ``(B, H_out * W_out, 2)`` to the
            source pixel points to sample, same shape. With ``chunk`` it is called
            on ``(B, M, 2)`` slices of them in turn, and must map each point on
            its own.
        out_size: Output ``(H_out, W_out)``.
        mode: Interpolation of :func:`torch.nn.functional.grid_sample`.
        padding_mode: How ``grid_sample`` treats points outside the image.
        chunk: At most this many points per call of ``backward_map``, to bound
            its memory (a spline with K control points holds ``chunk × K``
            distances at once); ``None`` maps all points in one call.

    Returns:
        The warped images.

    Shape:
        - image: ``(B, C, H, W)``
        - output: ``(B, C, H_out, W_out)``

    Raises:
        ValueError: If ``image`` is not 4D or ``backward_map`` returns the wrong shape.

    Examples:
        >>> image = torch.arange(6.0).view(1, 1, 2, 3)
        >>> warp_image(image, lambda p: p + torch.tensor([1.0, 0.0]), (2, 2))
        tensor([[[[1., 2.],
                  [4., 5.]]]])
    """
    _require(image.dim() == 4, 'image', '(B, C, H, W)', image)
    batch, (height, width) = image.shape[0], out_size
    like = dict(device=image.device, dtype=image.dtype)
    ys, xs = torch.meshgrid(torch.arange(height, **like), torch.arange(width, **like),
                            indexing='ij')
    grid = torch.stack((xs, ys), -1).reshape(1, -1, 2).expand(batch, -1, -1)
    parts = grid.split(max(1, chunk), dim=1) if chunk else (grid,)
    source = torch.cat([backward_map(part) for part in parts], 1)
    _require(source.shape == grid.shape, 'backward_map output', f'{tuple(grid.shape)}', source)
    source = pixel_to_normalized(source.to(image.dtype), image.shape[-2:])
    return F.grid_sample(image, source.reshape(batch, height, width, 2), mode=mode,
                         padding_mode=padding_mode, align_corners=True)


def homography_transform(h: Tensor, points: Tensor) -> Tensor:
    """Apply 3x3 homographies to points.

    Args:
        h: Homographies acting on ``(x, y, 1)`` column vectors.
        points: Points ``(x, y)``, pixels.

    Returns:
        The mapped points; points sent to infinity come back as ``inf``/``nan``.

    Shape:
        - h: ``(B, 3, 3)``
        - points: ``(B, M, 2)``
        - output: ``(B, M, 2)``

    Raises:
        ValueError: If ``h`` is not ``(B, 3, 3)`` or ``points`` not ``(B, M, 2)``.

    Examples:
        >>> h = torch.tensor([[[2.0, 0.0, 1.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]]])
        >>> homography_transform(h, torch.tensor([[[1.0, 3.0]]]))
        tensor([[[3., 6.]]])
    """
    _require(h.dim() == 3 and h.shape[-2:] == (3, 3), 'h', '(B, 3, 3)', h)
    _check_points('points', points, h.shape[0])
    mapped = torch.cat((points, torch.ones_like(points[..., :1])), -1) @ h.mT
    return mapped[..., :2] / mapped[..., 2:]
