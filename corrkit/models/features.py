"""What the two matching stages hand each other: per-image features and per-point matches.

A matcher encodes every image once (:meth:`~corrkit.models.base.Matcher.encode`)
into :class:`ImageFeatures`, then matches points between any two encoded images
(:meth:`~corrkit.models.base.Matcher.match_points`, returning :class:`PointMatches`).
Each encoded image keeps its :class:`ImageFrame`, the map between the pixels of
the image as the user gave it and the pixels of the tensor the backbone saw, so
points go in and come out in the user's pixels.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, replace
from typing import NamedTuple, Sequence

import torch
from torch import Tensor

from ..ops import normalized_to_pixel, pixel_to_normalized, rescale_points

__all__ = ['ImageFeatures', 'ImageFrame', 'PointMatches']


@dataclass(frozen=True)
class ImageFrame:
    """Where an image sits in the model's input: its resize and padding.

    The image of ``size`` pixels is resized to fill the input's content area
    (``input_size`` less the padding) and shifted by the left and top padding.
    Pixel centres map as in :func:`~corrkit.ops.rescale_points`, so a point and
    its image are resized alike.

    Attributes:
        size: ``(H, W)`` of the image as given.
        input_size: ``(H, W)`` of the tensor the backbone saw.
        padding: ``(left, top, right, bottom)`` input pixels around the content.

    Examples:
        >>> frame = ImageFrame((100, 200), (50, 50))
        >>> frame.to_input(torch.tensor([[199.5, -0.5]]))
        tensor([[49.5000, -0.5000]])
        >>> back = frame.from_normalized(frame.to_normalized(torch.tensor([[10.0, 20.0]])))
        >>> bool(torch.allclose(back, torch.tensor([[10.0, 20.0]])))
        True
    """

    size: tuple[int, int]
    input_size: tuple[int, int]
    padding: tuple[int, int, int, int] = (0, 0, 0, 0)

    def __post_init__(self) -> None:
        for name, length in (('size', 2), ('input_size', 2), ('padding', 4)):
            value = tuple(int(v) for v in getattr(self, name))
            if len(value) != length:
                raise ValueError(f'ImageFrame.{name} needs {length} numbers, got {value}')
            object.__setattr__(self, name, value)
        content = self.content_size
        if min(self.size) < 1 or min(content) < 1 or min(self.padding) < 0:
            raise ValueError(f'an image frame needs positive sizes and non-negative padding, '
                             f'got size={self.size}, input_size={self.input_size}, '
                             f'padding={self.padding}')

    @classmethod
    def identity(cls, size: Sequence[int]) -> ImageFrame:
        """The frame of an image given at the input size itself."""
        size = (int(size[0]), int(size[1]))
        return cls(size, size)

    @property
    def content_size(self) -> tuple[int, int]:
        """``(H, W)`` of the input's area the image fills."""
        left, top, right, bottom = self.padding
        return (self.input_size[0] - top - bottom, self.input_size[1] - left - right)

    @property
    def is_identity(self) -> bool:
        """Whether image pixels are input pixels (no resize, no padding)."""
        return self.size == self.input_size and not any(self.padding)

    def _offset(self, like: Tensor) -> Tensor:
        return torch.tensor(self.padding[:2], dtype=like.dtype, device=like.device)

    def to_input(self, points: Tensor) -> Tensor:
        """Image pixels ``(..., 2)`` → input pixels."""
        if self.is_identity:
            return points
        return rescale_points(points, self.size, self.content_size) + self._offset(points)

    def from_input(self, points: Tensor) -> Tensor:
        """Input pixels ``(..., 2)`` → image pixels."""
        if self.is_identity:
            return points
        return rescale_points(points - self._offset(points), self.content_size, self.size)

    def to_normalized(self, points: Tensor) -> Tensor:
        """Image pixels ``(..., 2)`` → normalised input coordinates (``ops.coords``)."""
        return pixel_to_normalized(self.to_input(points), self.input_size)

    def from_normalized(self, points: Tensor) -> Tensor:
        """Normalised input coordinates ``(..., 2)`` → image pixels."""
        return self.from_input(normalized_to_pixel(points, self.input_size))


@dataclass(frozen=True)
class ImageFeatures:
    """A batch of encoded images: each image's feature maps and its frame.

    Nothing in it depends on the image it will be matched with, so one
    encoding serves every pair the image is part of. Index it to pick images
    (``features[2]``, ``features[1:3]``, ``features[[0, 0, 4]]``; an int keeps
    the batch dimension) and join batches with :meth:`cat`.

    Attributes:
        maps: One map per ``out_channels`` entry of the matcher's neck (of the
            backbone without one), ``(N, C_i, h_i, w_i)``.
        frames: One :class:`ImageFrame` per image.
        mirrored: The maps of the images mirrored left to right (test-time pose
            alignment), or ``None`` when they were not encoded.

    Raises:
        ValueError: If ``maps`` is empty, the maps or frames disagree on the
            number of images, or ``mirrored`` does not match ``maps``.
    """

    maps: tuple[Tensor, ...]
    frames: tuple[ImageFrame, ...]
    mirrored: tuple[Tensor, ...] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, 'maps', tuple(self.maps))
        object.__setattr__(self, 'frames', tuple(self.frames))
        if self.mirrored is not None:
            object.__setattr__(self, 'mirrored', tuple(self.mirrored))
        if not self.maps:
            raise ValueError('ImageFeatures needs at least one feature map')
        counts = {m.shape[0] for m in self.maps}
        if counts != {len(self.frames)}:
            raise ValueError(f'ImageFeatures: the maps hold {sorted(counts)} images but '
                             f'{len(self.frames)} frames were given')
        if self.mirrored is not None and [m.shape for m in self.mirrored] != \
                [m.shape for m in self.maps]:
            raise ValueError('ImageFeatures: the mirrored maps must have the shapes of the maps')

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int | slice | Sequence[int] | Tensor) -> ImageFeatures:
        if not isinstance(index, (slice, list, tuple)) and (
                not isinstance(index, Tensor) or index.dim() == 0):
            try:  # an int, a numpy integer, a 0-d tensor
                i = operator.index(index)
            except TypeError:
                i = None
            if i is not None:
                index = slice(i, i + 1 if i != -1 else None)
        if isinstance(index, slice):
            frames = self.frames[index]
        else:
            index = torch.as_tensor(index, dtype=torch.long)
            frames = tuple(self.frames[i] for i in index.tolist())
            index = index.to(self.maps[0].device)
        mirrored = None if self.mirrored is None else tuple(m[index] for m in self.mirrored)
        return ImageFeatures(tuple(m[index] for m in self.maps), frames, mirrored)

    @staticmethod
    def cat(parts: Sequence[ImageFeatures]) -> ImageFeatures:
        """The images of several batches in one (mirrored maps kept if every part has them).

        Raises:
            ValueError: If ``parts`` is empty.
        """
        if not parts:
            raise ValueError('ImageFeatures.cat needs at least one batch')
        if len(parts) == 1:
            return parts[0]
        maps = tuple(torch.cat(level) for level in zip(*(p.maps for p in parts)))
        mirrored = None
        if all(p.mirrored is not None for p in parts):
            mirrored = tuple(torch.cat(level) for level in zip(*(p.mirrored for p in parts)))
        return ImageFeatures(maps, tuple(f for p in parts for f in p.frames), mirrored)

    def without_mirrored(self) -> ImageFeatures:
        """The same images without their mirrored maps (a target needs none)."""
        return self if self.mirrored is None else replace(self, mirrored=None)

    def to_normalized(self, points: Tensor) -> Tensor:
        """Each image's points from its pixels to normalised input coordinates.

        Shape:
            - points: ``(N, K, 2)``, one row per image
            - output: ``(N, K, 2)``
        """
        self._check_points(points)
        return torch.stack([f.to_normalized(p) for f, p in zip(self.frames, points)])

    def from_normalized(self, points: Tensor) -> Tensor:
        """Each image's points from normalised input coordinates to its pixels.

        Shape:
            - points: ``(N, K, 2)``
            - output: ``(N, K, 2)``
        """
        self._check_points(points)
        return torch.stack([f.from_normalized(p) for f, p in zip(self.frames, points)])

    def _check_points(self, points: Tensor) -> None:
        if points.dim() != 3 or points.shape[0] != len(self) or points.shape[-1] != 2:
            raise ValueError(f'points must be (N, K, 2) for N = {len(self)} images, got '
                             f'{tuple(points.shape)}')


class PointMatches(NamedTuple):
    """What :meth:`~corrkit.models.base.Matcher.match_points` returns for a batch of pairs.

    Attributes:
        src_kps: ``(B, N, 2)`` the source points matched ``(x, y)``, pixels of the
            source images (the points given, or the cells of the flow's grid).
        trg_kps: ``(B, N, 2)`` their predicted matches, pixels of the target images.
        confidence: ``(B, N)`` how sure the matcher is of each match, in ``[0, 1]``.
        maps: ``(B, N, Ht, Wt)`` each point's non-negative scores over a grid
            spanning the target (match probabilities of a correlation matcher,
            clamped similarities of a keypoint matcher), when asked for.
        flow: ``(B, 2, Hf, Wf)`` the dense source-to-target flow, normalised target
            coordinates (``target = source_grid + flow``), when asked for.
        flipped: ``(B,)`` bool, which pairs were matched with the source
            mirrored (test-time pose alignment), or ``None`` without it.
    """

    src_kps: Tensor
    trg_kps: Tensor
    confidence: Tensor
    maps: Tensor | None = None
    flow: Tensor | None = None
    flipped: Tensor | None = None
