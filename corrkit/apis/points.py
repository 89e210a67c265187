"""Source points from users: keypoint files, a default grid, and the check that they lie
inside the image. ``corrkit match``, the demo and ``corrkit match-pairs`` share them."""
from __future__ import annotations

import json
import os

import numpy as np

__all__ = ['check_inside', 'read_keypoints', 'source_grid']


def read_keypoints(path: str | os.PathLike) -> np.ndarray:
    """Read ``(N, 2)`` points ``(x, y)`` from a JSON list of pairs or a two-column CSV.

    Args:
        path: ``.json`` (``[[x, y], ...]`` or ``{"kps": [[x, y], ...]}``) or
            ``.csv`` / ``.txt`` (one ``x,y`` per line, an optional header line).

    Returns:
        The points as a float array.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the content is not a list of finite ``(x, y)`` pairs.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"keypoint file '{path}' does not exist")
    try:
        if path.endswith('.json'):
            with open(path) as f:
                data = json.load(f)
            data = data.get('kps', data) if isinstance(data, dict) else data
            pts = np.asarray(data, dtype=np.float64)
        else:
            rows = [line.strip() for line in open(path) if line.strip()]
            if rows and not rows[0][0].lstrip('-').replace('.', '', 1)[:1].isdigit():
                rows = rows[1:]
            pts = np.asarray([[float(v) for v in r.replace(';', ',').split(',')[:2]]
                              for r in rows], dtype=np.float64)
    except (ValueError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"'{path}' is not a list of (x, y) keypoints ({err})") from err
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise ValueError(f"'{path}' must hold N >= 1 points (x, y); got shape {pts.shape}")
    bad = np.flatnonzero(~np.isfinite(pts).all(1))
    if len(bad):
        raise ValueError(f"'{path}': point {bad[0] + 1} is {pts[bad[0]].tolist()}; "
                         f'coordinates must be finite pixels')
    return pts


def check_inside(points: np.ndarray, size: tuple[int, int], source: str) -> None:
    """Raise ``ValueError`` naming the first point outside an image of ``size`` ``(H, W)``,
    or not finite.

    Pixel centres run from ``0`` to ``W - 1``, so the image covers ``-0.5`` to
    ``W - 0.5`` (``H - 0.5``): a point beyond that is outside.

    Examples:
        >>> check_inside(np.array([[0.0, 0.0], [4.0, 2.0]]), (3, 5), 'kps.csv')
        >>> check_inside(np.array([[5.0, 0.0]]), (3, 5), 'kps.csv')
        Traceback (most recent call last):
        ...
        ValueError: kps.csv: point 1, [5.0, 0.0], lies outside the 5 x 3 source image
    """
    h, w = size
    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    outside = np.flatnonzero(~np.isfinite(points).all(1)
                             | (points[:, 0] < -0.5) | (points[:, 0] > w - 0.5)
                             | (points[:, 1] < -0.5) | (points[:, 1] > h - 0.5))
    if len(outside):
        raise ValueError(f'{source}: point {outside[0] + 1}, {points[outside[0]].tolist()}, '
                         f'lies outside the {w} x {h} source image')


def source_grid(height: int, width: int, n: int = 8, margin: float = 0.1) -> np.ndarray:
    """An ``n`` × ``n`` grid of points over the source, ``margin`` of each side left out."""
    xs = np.linspace(margin * (width - 1), (1 - margin) * (width - 1), n)
    ys = np.linspace(margin * (height - 1), (1 - margin) * (height - 1), n)
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
