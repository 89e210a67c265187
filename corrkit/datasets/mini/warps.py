"""Random, realistic warps with exact keypoint mapping and the difficulty they imply.

A warp is defined by its backward map (target pixel → source pixel): a
thin-plate spline through a 4 × 4 grid of control points that follow a random
similarity + perspective transform plus a small non-rigid bend. Images are
rendered through the backward map; points are mapped forwards by inverting it
with Newton's method, so every keypoint satisfies ``backward(q) = p`` to
``1e-3`` px or is dropped.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from ...ops.tps import ThinPlateSpline, homography_transform, invert_points, tps_fit, \
    tps_jacobian, tps_transform

#: Corner displacement (fraction of the image size) per viewpoint level.
VIEWPOINT_RANGES = ((0.0, 0.04), (0.04, 0.10), (0.10, 0.16))
#: Linear scale ratio (either way) per scale level.
SCALE_RANGES = ((1.0, 1.25), (1.25, 1.6), (1.6, 2.0))
#: Residual below which an inverted point counts as exact, in pixels.
EXACT_TOL = 1e-3


@dataclass
class Warp:
    """A sampled warp: its backward spline, a forward spline for initial guesses, levels."""

    backward: ThinPlateSpline
    forward: ThinPlateSpline
    viewpoint: int
    scale: int
    size: tuple[int, int]

    def source_of(self, target_points: Tensor) -> Tensor:
        """Backward map ``(M, 2)`` target pixels → source pixels."""
        return tps_transform(self.backward, target_points[None])[0]

    def target_of(self, source_points: Tensor) -> tuple[Tensor, Tensor]:
        """Forward map by exact inversion; returns points and a mask of converged ones."""
        init = tps_transform(self.forward, source_points[None])
        points, residual = invert_points(
            lambda q: tps_transform(self.backward, q), lambda q: tps_jacobian(self.backward, q),
            source_points[None], init, iters=30, tol=EXACT_TOL / 10)
        return points[0], residual[0] < EXACT_TOL


def _uniform(gen: torch.Generator, low: float, high: float, *shape: int) -> Tensor:
    return low + (high - low) * torch.rand(shape or (1,), generator=gen, dtype=torch.float64)


def homography_from_points(src: Tensor, dst: Tensor) -> Tensor:
    """The 3 × 3 homography taking 4 points ``src`` to ``dst`` (both ``(4, 2)``).

    Examples:
        >>> sq = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64)
        >>> torch.allclose(homography_from_points(sq, sq + 2.0) @ torch.tensor([1.0, 1.0, 1.0],
        ...                dtype=torch.float64), torch.tensor([3.0, 3.0, 1.0], dtype=torch.float64))
        True
    """
    rows, rhs = [], []
    for (x, y), (u, v) in zip(src.tolist(), dst.tolist()):
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    h = torch.linalg.solve(torch.tensor(rows, dtype=torch.float64),
                           torch.tensor(rhs, dtype=torch.float64))
    return torch.cat([h, h.new_ones(1)]).reshape(3, 3)


def sample_warp(size: tuple[int, int], gen: torch.Generator, bend: float = 0.015) -> Warp:
    """A random warp of an ``(H, W)`` image onto a canvas of the same size.

    Viewpoint and scale levels (0 easy, 1 medium, 2 hard) are drawn first and
    the transform is sampled inside their ranges, so the difficulty flags
    describe the warp.

    Args:
        size: ``(H, W)`` of source and target.
        gen: Random generator (the only source of randomness).
        bend: Standard deviation of the non-rigid bend, as a fraction of the size.
    """
    height, width = size
    extent = float(max(height, width))
    viewpoint, scale_level = (int(torch.randint(0, 3, (1,), generator=gen)) for _ in range(2))
    ratio = float(_uniform(gen, *SCALE_RANGES[scale_level]))
    scale = ratio if float(_uniform(gen, 0, 1)) < 0.5 else 1.0 / ratio
    angle = math.radians(float(_uniform(gen, -12.0, 12.0)) * (1 + viewpoint) / 2)
    shift = _uniform(gen, -0.08, 0.08, 2) * torch.tensor([width, height], dtype=torch.float64)
    centre = torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=torch.float64)
    corners = torch.tensor([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]],
                           dtype=torch.float64)
    rot = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
                       dtype=torch.float64)
    moved = (corners - centre) @ rot.T * scale + centre + shift
    magnitude = _uniform(gen, *VIEWPOINT_RANGES[viewpoint], 4, 1) * extent
    direction = _uniform(gen, 0.0, 2 * math.pi, 4, 1)
    moved = moved + magnitude * torch.cat([direction.cos(), direction.sin()], dim=-1)
    homography = homography_from_points(corners, moved)
    grid = torch.stack(torch.meshgrid(torch.linspace(0, width - 1, 4, dtype=torch.float64),
                                      torch.linspace(0, height - 1, 4, dtype=torch.float64),
                                      indexing='xy'), dim=-1).reshape(-1, 2)
    target = homography_transform(homography[None], grid[None])[0]
    target = target + torch.randn(target.shape, generator=gen, dtype=torch.float64) * bend * extent
    return Warp(backward=tps_fit(target[None], grid[None]), forward=tps_fit(grid[None], target[None]),
                viewpoint=viewpoint, scale=scale_level, size=size)
