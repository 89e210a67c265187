"""Drawing correspondences between two images."""
from __future__ import annotations

import colorsys
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ..utils.image import ImageLike, load_image
from .display import display_points


def draw_matches(src_image: ImageLike, trg_image: ImageLike, src_kps: Sequence, trg_kps: Sequence,
                 height: int = 480, gt_kps: Sequence | None = None, radius: int = 4) -> Image.Image:
    """Source and target side by side, each match a coloured line between two dots.

    Both images are scaled to ``height``; keypoints are given in pixels of the
    images as passed and carried with them (pixel centres, :func:`display_points`). With ``gt_kps`` (true target points), each prediction is
    joined to its ground truth by a thin white line, so errors are visible.

    Args:
        src_image: Source image.
        trg_image: Target image.
        src_kps: ``(N, 2)`` source points ``(x, y)``.
        trg_kps: ``(N, 2)`` matched target points ``(x, y)``.
        height: Height of the drawing in pixels.
        gt_kps: Optional ``(N, 2)`` true target points.
        radius: Dot radius in pixels.

    Returns:
        An RGB image of width ``src_width + trg_width`` after scaling.

    Examples:
        >>> img = np.zeros((20, 30, 3), dtype=np.uint8)
        >>> draw_matches(img, img, [[1, 2]], [[3, 4]], height=40).size
        (120, 40)
    """
    src_img, trg_img = load_image(src_image), load_image(trg_image)
    src, trg = _to_height(src_img, height), _to_height(trg_img, height)
    canvas = Image.new('RGB', (src.width + trg.width, height))
    canvas.paste(src, (0, 0))
    canvas.paste(trg, (src.width, 0))
    draw = ImageDraw.Draw(canvas)
    trg_size = (trg_img.height, trg_img.width)
    src_pts = display_points(src_kps, (src_img.height, src_img.width), src)
    trg_pts = display_points(trg_kps, trg_size, trg) + [src.width, 0]
    gt_pts = None if gt_kps is None else display_points(gt_kps, trg_size, trg) + [src.width, 0]
    for i, (p, q) in enumerate(zip(src_pts, trg_pts)):
        color = _color(i, len(src_pts))
        draw.line([tuple(p), tuple(q)], fill=color, width=2)
        if gt_pts is not None:
            draw.line([tuple(q), tuple(gt_pts[i])], fill=(255, 255, 255), width=1)
            _dot(draw, gt_pts[i], radius, (255, 255, 255))
        for point in (p, q):
            _dot(draw, point, radius, color)
    return canvas


def _to_height(image: Image.Image, height: int) -> Image.Image:
    width = max(1, round(image.width * height / image.height))
    return image.resize((width, height), Image.BILINEAR)


def _color(i: int, n: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(i / max(n, 1), 0.9, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def _dot(draw: ImageDraw.ImageDraw, p: np.ndarray, radius: int, color: tuple) -> None:
    x, y = float(p[0]), float(p[1])
    draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color,
                 outline=(0, 0, 0))
