"""Reading the two images of a pair."""
from __future__ import annotations

import warnings

import torch
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from ...registry import TRANSFORMS
from ...utils.image import load_image
from ._pair import BORDER_TOLERANCE, IDENTITY_FRAME, SIDES, as_box, as_keypoints, inside_image


@TRANSFORMS.register_module()
class LoadPairImages:
    """Read ``src_img_path`` and ``trg_img_path`` and wrap the annotations for torchvision.

    Images are read with Pillow, the EXIF orientation applied and any mode
    converted to RGB (``uint8 (3, H, W)`` ``tv_tensors.Image``). Keypoints become
    ``tv_tensors.KeyPoints`` and boxes ``tv_tensors.BoundingBoxes`` on their
    image's canvas. A keypoint annotated outside its image (by more than
    :data:`~corrkit.datasets.transforms._pair.BORDER_TOLERANCE`) is marked
    invalid in ``kps_valid`` rather than clamped, and a warning says so (once).
    Adds ``src_ori_shape`` / ``trg_ori_shape`` (``(H, W)`` as read), the
    identity ``src_frame`` / ``trg_frame`` (the map from original pixels to the
    current frame, which the geometric transforms update), and the target's
    original keypoints and box (``trg_kps_original``, ``trg_bbox_original``) for
    measuring PCK in the original images.

    Raises:
        FileNotFoundError: If an image file is missing (the message names it).
        ValueError: If a file is not a readable image, or has more pixels than
            :func:`~corrkit.utils.image.max_image_pixels` (refused from its header,
            before decoding); the message names the file.
    """

    _warned_outside = False

    def __call__(self, results: dict) -> dict:
        valid = torch.as_tensor(results['kps_valid'], dtype=torch.bool).clone()
        for side in SIDES:
            image = F.pil_to_tensor(load_image(results[f'{side}_img_path']))
            height, width = image.shape[-2:]
            results[f'{side}_img'] = tv_tensors.Image(image)
            results[f'{side}_ori_shape'] = (height, width)
            results[f'{side}_frame'] = IDENTITY_FRAME
            kps = as_keypoints(results[f'{side}_kps'], height, width)
            inside = inside_image(kps, height, width, BORDER_TOLERANCE)
            if (valid & ~inside).any() and not LoadPairImages._warned_outside:
                LoadPairImages._warned_outside = True
                warnings.warn('annotated keypoints outside their image were marked invalid '
                              f'(first in {results[f"{side}_img_path"]}); this warning is '
                              'shown once per process', stacklevel=2)
            valid &= inside
            results[f'{side}_kps'] = kps
            if results.get(f'{side}_bbox') is not None:
                results[f'{side}_bbox'] = as_box(results[f'{side}_bbox'], height, width)
        results['kps_valid'] = valid
        results['trg_kps_original'] = results['trg_kps'].as_subclass(torch.Tensor).clone()
        box = results.get('trg_bbox')
        results['trg_bbox_original'] = None if box is None else box.as_subclass(torch.Tensor).clone()
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
