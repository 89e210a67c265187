"""Helpers shared by the pair transforms: one side (``src`` / ``trg``) at a time."""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor
from torchvision import tv_tensors

SIDES = ('src', 'trg')


def apply_to_side(results: dict, side: str, fn: Callable[[Tensor], Tensor]) -> None:
    """Apply a ``torchvision.transforms.v2`` functional to one image, its keypoints and box.

    ``fn`` is called on the ``tv_tensors.Image``, the ``KeyPoints`` and, when
    present, the ``BoundingBoxes`` of ``side``; torchvision dispatches on the
    type so the three stay consistent.
    """
    for key in (f'{side}_img', f'{side}_kps', f'{side}_bbox'):
        if results.get(key) is not None:
            results[key] = fn(results[key])


#: How far (pixels) outside the image an annotated keypoint may lie and still count:
#: formats annotated in MATLAB's 1-based pixels (PF-PASCAL, PF-WILLOW) can put a
#: point on the last row or column at ``W`` or ``H``.
BORDER_TOLERANCE = 1.0


def inside_image(kps: Tensor, height: int, width: int, tolerance: float = 0.0) -> Tensor:
    """Which ``(x, y)`` points (pixel centres at integers) lie on the ``height × width`` image.

    A pixel covers ``[x - 0.5, x + 0.5]``; ``tolerance`` widens the image on every side.

    Examples:
        >>> inside_image(torch.tensor([[0.0, 0.0], [9.6, 0.0], [-0.5, 4.5]]), 5, 10)
        tensor([ True, False,  True])
    """
    x, y = kps[..., 0], kps[..., 1]
    low = -0.5 - tolerance
    return (x >= low) & (x <= width - 0.5 + tolerance) & (y >= low) & \
        (y <= height - 0.5 + tolerance)


def image_size(results: dict, side: str) -> tuple[int, int]:
    """``(H, W)`` of one side's image."""
    return tuple(results[f'{side}_img'].shape[-2:])


def as_keypoints(points: object, height: int, width: int) -> tv_tensors.KeyPoints:
    """Wrap ``(K, 2)`` pixel points as ``tv_tensors.KeyPoints`` on an ``H × W`` canvas."""
    return tv_tensors.KeyPoints(torch.as_tensor(points, dtype=torch.float32).reshape(-1, 2),
                                canvas_size=(height, width))


def as_box(box: object, height: int, width: int) -> tv_tensors.BoundingBoxes:
    """Wrap ``[x1, y1, x2, y2]`` as a one-box ``tv_tensors.BoundingBoxes``."""
    return tv_tensors.BoundingBoxes(torch.as_tensor(box, dtype=torch.float32).reshape(1, 4),
                                    format='XYXY', canvas_size=(height, width))


#: Identity of the map from original pixels to the current frame, ``(ax, bx, ay, by)``:
#: ``x_frame = ax * x + bx`` and ``y_frame = ay * y + by`` (pixel centres at integers).
IDENTITY_FRAME = (1.0, 0.0, 1.0, 0.0)


def compose_frame(results: dict, side: str, ax: float, bx: float, ay: float, by: float) -> None:
    """Follow a transform ``x -> ax x + bx``, ``y -> ay y + by`` in ``{side}_frame``.

    A pipeline that cannot say where a frame pixel came from (a flip) stores
    ``None``; measuring in the original images then refuses the pair.
    """
    frame = results.get(f'{side}_frame')
    if frame is not None:
        fx, gx, fy, gy = frame
        results[f'{side}_frame'] = (ax * fx, ax * gx + bx, ay * fy, ay * gy + by)
