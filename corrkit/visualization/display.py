"""Images scaled for display, and points carried with them by the pixel convention of
:func:`~corrkit.ops.rescale_points` (pixel centres), as every picture corrkit draws."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from ..ops import rescale_points

__all__ = ['DISPLAY_SIDE', 'display_points', 'shrink', 'side_by_side']

#: Longest side of the images corrkit draws on or embeds (matches are found at the model's size).
DISPLAY_SIDE = 1024


def shrink(image: Image.Image, side: int = DISPLAY_SIDE) -> Image.Image:
    """``image`` scaled down so its longest side is at most ``side`` (as it is if smaller).

    Examples:
        >>> shrink(Image.new('RGB', (4000, 1000))).size
        (1024, 256)
    """
    scale = min(1.0, side / max(image.size))
    if scale == 1.0:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.BILINEAR, reducing_gap=3.0)


def display_points(points: Any, image_size: tuple[int, int], shown: Image.Image) -> np.ndarray:
    """Points in pixels of an image of ``image_size`` ``(H, W)``, carried to a resized copy.

    Args:
        points: ``(N, 2)`` points ``(x, y)``.
        image_size: ``(H, W)`` of the image the points are in.
        shown: The resized copy.

    Returns:
        ``(N, 2)`` float64 points in pixels of ``shown``.

    Examples:
        >>> display_points([[0.0, 0.0], [99.5, 49.5]], (50, 100), Image.new('RGB', (50, 25)))
        array([[-0.25, -0.25],
               [49.5 , 24.5 ]])
    """
    if isinstance(points, torch.Tensor):
        points = points.detach().cpu()
    pts = torch.as_tensor(np.asarray(points, dtype=np.float64)).reshape(-1, 2)
    return rescale_points(pts, tuple(image_size), (shown.height, shown.width)).numpy()


def side_by_side(left: Image.Image, right: Image.Image, gap: int = 8) -> Image.Image:
    """Two images next to each other on white, top-aligned."""
    canvas = Image.new('RGB', (left.width + gap + right.width, max(left.height, right.height)),
                       'white')
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gap, 0))
    return canvas
