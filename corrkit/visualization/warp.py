"""Warping the source onto the target through predicted correspondences."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..ops import normalized_to_pixel, pixel_to_normalized
from ..ops.tps import tps_fit, tps_transform, warp_image
from ..utils.image import ImageLike, image_to_tensor, load_image


def tps_warp(src_image: ImageLike, trg_image: ImageLike, src_kps: Sequence, trg_kps: Sequence,
             smoothing: float = 5.0) -> Image.Image:
    """The source image warped onto the target by a thin-plate spline through the matches.

    As in TransforMatcher's qualitative figures: a spline maps each target pixel to the
    source (fitted on the predicted pairs, ``trg_kps[i] -> src_kps[i]``), and the source
    is sampled there. Points are normalised to ``[-1, 1]`` before fitting, so
    ``smoothing`` (the spline's regulariser) does not depend on the image sizes; a
    larger value trusts single matches less.

    Args:
        src_image: Source image.
        trg_image: Target image (gives the output size).
        src_kps: ``(N, 2)`` source points in source pixels, ``N >= 3``.
        trg_kps: ``(N, 2)`` their matches in target pixels.
        smoothing: Regulariser of the spline.

    Returns:
        An RGB image of the target's size; target pixels that map outside the source are black.

    Raises:
        ValueError: If fewer than 3 pairs are given or the shapes differ.
    """
    src_img, trg_img = load_image(src_image), load_image(trg_image)
    src = torch.as_tensor(np.asarray(src_kps, dtype=np.float64)).reshape(-1, 2)
    trg = torch.as_tensor(np.asarray(trg_kps, dtype=np.float64)).reshape(-1, 2)
    if src.shape != trg.shape or len(src) < 3:
        raise ValueError(f'need N >= 3 matching point pairs, got {len(src)} source and '
                         f'{len(trg)} target points')
    src_size, trg_size = (src_img.height, src_img.width), (trg_img.height, trg_img.width)
    backward = tps_fit(pixel_to_normalized(trg, trg_size)[None],
                       pixel_to_normalized(src, src_size)[None], reg=smoothing)

    def to_source(points: torch.Tensor) -> torch.Tensor:
        normal = pixel_to_normalized(points.double(), trg_size)
        return normalized_to_pixel(tps_transform(backward, normal), src_size).to(points.dtype)

    image = image_to_tensor(src_img)[None]
    warped = warp_image(image, to_source, (trg_img.height, trg_img.width), padding_mode='zeros',
                        chunk=1 << 16)  # bounds the spline's pixels × control points
    array = warped[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(array)
