"""Geometric pair transforms: flip, source mirror, keypoint-aware random crop, resize."""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from ...registry import TRANSFORMS
from ._pair import SIDES, apply_to_side, compose_frame, image_size


def resize_keypoints_exact(kps: tv_tensors.KeyPoints, size: list[int]) -> tv_tensors.KeyPoints:
    """Resize keypoints so that they follow the resized image exactly.

    corrkit puts pixel centres at integer coordinates, so resizing by a factor
    ``s`` maps ``x`` to ``(x + 0.5) * s - 0.5``; torchvision's keypoint resize
    computes ``x * s``. Shifting by half a pixel around torchvision's call
    gives the exact map.

    Examples:
        >>> kps = tv_tensors.KeyPoints([[0.0, 0.0], [3.0, 1.0]], canvas_size=(2, 4))
        >>> resize_keypoints_exact(kps, [4, 8]).tolist()
        [[0.5, 0.5], [6.5, 2.5]]
    """
    shifted = tv_tensors.wrap(kps.as_subclass(Tensor) + 0.5, like=kps)
    out = F.resize(shifted, size)
    return tv_tensors.wrap(out.as_subclass(Tensor) - 0.5, like=out)


@TRANSFORMS.register_module()
class PairResize:
    """Resize both images (and their keypoints and boxes) to the model's input size.

    By default each image is stretched to ``size``, as the correspondence
    benchmarks' protocol does (the aspect ratio is not kept). With
    ``keep_ratio`` each image is scaled so that its longer side fits ``size``
    and is then padded with zeros at the bottom and right, as the DINOv2-based
    matchers do; objects keep their shape. Either way the PCK reference sizes
    are computed afterwards in this frame, and the map back to the original
    pixels is kept in ``{side}_frame`` for measuring in the original images.

    Args:
        size: Output size, one number for a square or ``(H, W)``.
        antialias: Anti-alias when downsampling.
        keep_ratio: Scale by one factor per image and pad, instead of stretching.

    Examples:
        >>> import torch
        >>> from torchvision import tv_tensors
        >>> from corrkit.datasets.transforms._pair import as_keypoints
        >>> results = {}
        >>> for side in ('src', 'trg'):
        ...     image = torch.zeros(3, 50, 100, dtype=torch.uint8)
        ...     results[f'{side}_img'] = tv_tensors.Image(image)
        ...     results[f'{side}_kps'] = as_keypoints([[99.0, 49.0]], 50, 100)
        ...     results[f'{side}_frame'] = (1.0, 0.0, 1.0, 0.0)
        >>> out = PairResize(200, keep_ratio=True)(results)
        >>> tuple(out['trg_img'].shape), out['trg_kps'].tolist(), out['trg_frame']
        ((3, 200, 200), [[198.5, 98.5]], (2.0, 0.5, 2.0, 0.5))
    """

    def __init__(self, size: int | tuple[int, int] = 240, antialias: bool = True,
                 keep_ratio: bool = False):
        self.size = [size, size] if isinstance(size, int) else list(size)
        if len(self.size) != 2 or min(self.size) < 1:
            raise ValueError(f'size must be a positive int or (H, W), got {size!r}')
        self.antialias = antialias
        self.keep_ratio = keep_ratio

    def __call__(self, results: dict) -> dict:
        for side in SIDES:
            height, width = image_size(results, side)
            size = self._scaled_size(height, width) if self.keep_ratio else self.size
            results[f'{side}_img'] = F.resize(results[f'{side}_img'], size,
                                              antialias=self.antialias)
            results[f'{side}_kps'] = resize_keypoints_exact(results[f'{side}_kps'], size)
            if results.get(f'{side}_bbox') is not None:
                results[f'{side}_bbox'] = F.resize(results[f'{side}_bbox'], size)
            rx, ry = size[1] / width, size[0] / height
            compose_frame(results, side, rx, 0.5 * rx - 0.5, ry, 0.5 * ry - 0.5)
            if self.keep_ratio:  # pad bottom and right: coordinates stay as they are
                pad = [0, 0, self.size[1] - size[1], self.size[0] - size[0]]
                apply_to_side(results, side, lambda x: F.pad(x, pad, fill=0))
        return results

    def _scaled_size(self, height: int, width: int) -> list[int]:
        """The largest size of the image's aspect ratio that fits ``self.size``."""
        scale = min(self.size[0] / height, self.size[1] / width)
        return [min(self.size[0], max(1, round(height * scale))),
                min(self.size[1], max(1, round(width * scale)))]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(size={self.size}, antialias={self.antialias}, '
                f'keep_ratio={self.keep_ratio})')


@TRANSFORMS.register_module()
class PairFlip:
    """Flip both images horizontally where the annotation asks for it.

    PF-PASCAL's training list has a flip column; a flagged pair is used with
    both images (and their keypoints and boxes) mirrored. Keypoint identities
    are kept, so the pair stays consistent.

    Args:
        key: The boolean field of the results that requests the flip.
    """

    def __init__(self, key: str = 'flip'):
        self.key = key

    def __call__(self, results: dict) -> dict:
        if results.get(self.key):
            for side in SIDES:
                apply_to_side(results, side, F.horizontal_flip)
                results[f'{side}_frame'] = None  # mirrored: no longer measured in the original
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}(key={self.key!r})'


@TRANSFORMS.register_module()
class PairMirrorSource:
    """Mirror the source image of every pair (with its keypoints and box), not the target.

    An evaluation probe for test-time pose alignment: on a test split whose
    sources are mirrored, a matcher that compares features as they are meets
    every pair in the wrong pose. Keypoint identities are kept (the left eye
    stays the left eye, now on the other side). The target is untouched, so
    PCK in the original target image (``trg_frame``) stays valid; the source
    frame follows the mirror, ``x → W - 1 - x``.

    Examples:
        >>> from corrkit.datasets.transforms._pair import as_keypoints
        >>> results = dict(src_img=tv_tensors.Image(torch.arange(3.0).view(1, 1, 3)),
        ...                src_kps=as_keypoints([[0.0, 0.0]], 1, 3), src_frame=(1.0, 0.0, 1.0, 0.0))
        >>> out = PairMirrorSource()(results)
        >>> out['src_img'].flatten().tolist(), out['src_kps'].tolist(), out['src_frame']
        ([2.0, 1.0, 0.0], [[2.0, 0.0]], (-1.0, 2.0, 1.0, 0.0))
    """

    def __call__(self, results: dict) -> dict:
        width = image_size(results, 'src')[1]
        apply_to_side(results, 'src', F.horizontal_flip)
        compose_frame(results, 'src', -1.0, float(width - 1), 1.0, 0.0)
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'


@TRANSFORMS.register_module()
class PairRandomCrop:
    """Keypoint-aware random crop of each image, as in CATs' and TransforMatcher's training.

    With probability ``prob`` (drawn per image), each image is cropped to a
    random window that contains all of its valid keypoints with ``padding``
    pixels to spare (less where the image border is closer; with a single
    valid keypoint, half its distance to each border). The object box is
    cropped with the image (clamped to the window, as torchvision does for
    boxes); keypoints are translated, never clamped. A pipeline resizes to the
    input size afterwards.

    Args:
        prob: Probability of cropping each image.
        padding: Margin in pixels kept around the valid keypoints.
    """

    def __init__(self, prob: float = 0.5, padding: int = 20):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must lie in [0, 1], got {prob}')
        if padding < 0:
            raise ValueError(f'padding must be >= 0, got {padding}')
        self.prob = prob
        self.padding = padding

    def __call__(self, results: dict) -> dict:
        valid = results['kps_valid']
        for side in SIDES:
            if not valid.any() or torch.rand(()).item() >= self.prob:
                continue
            height, width = image_size(results, side)
            kps = results[f'{side}_kps'].as_subclass(Tensor)[valid]
            left, right = self._window(kps[:, 0], width)
            top, bottom = self._window(kps[:, 1], height)
            apply_to_side(results, side,
                          lambda x: F.crop(x, top, left, bottom - top, right - left))
            compose_frame(results, side, 1.0, -float(left), 1.0, -float(top))
        return results

    def _window(self, coords: Tensor, length: int) -> tuple[int, int]:
        """A random ``[start, end)`` pixel range holding ``coords`` with the padding."""
        low, high = coords.min().item(), coords.max().item()
        before = after = self.padding
        if len(coords) == 1:  # one point: keep half of the room on each side
            before, after = max(0.0, low) / 2, max(0.0, length - 1 - high) / 2
        first = max(0, math.floor(low - before))
        last = min(length, math.ceil(high + after) + 1)
        start = int(torch.randint(0, first + 1, ()).item())
        end = int(torch.randint(last, length + 1, ()).item())
        return start, end

    def __repr__(self) -> str:
        return f'{type(self).__name__}(prob={self.prob}, padding={self.padding})'
