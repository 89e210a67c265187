"""Batching and normalisation of image pairs."""
from __future__ import annotations

from typing import Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from ...registry import MODELS

IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@MODELS.register_module()
class PairDataPreprocessor(BaseDataPreprocessor):
    """Stacks image pairs, moves them to the model's device and normalises them.

    Args:
        mean: Per-channel RGB mean, in the 0–255 range of the input images.
        std: Per-channel RGB standard deviation, same range.
        non_blocking: Whether host-to-device copies are non-blocking.

    Shape:
        - ``data['inputs']``: ``(B, 2, 3, H, W)`` or a list of ``(2, 3, H, W)``,
          RGB in ``[0, 255]`` (any dtype)
        - output ``['inputs']``: ``(B, 2, 3, H, W)``, floating, normalised

    Examples:
        >>> pre = PairDataPreprocessor(mean=(0, 0, 0), std=(255, 255, 255))
        >>> out = pre(dict(inputs=[torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)]))
        >>> out['inputs'].shape, float(out['inputs'].max())
        (torch.Size([1, 2, 3, 4, 4]), 1.0)
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN,
                 std: Sequence[float] = IMAGENET_STD, non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f'mean and std need 3 (RGB) entries, got {mean} and {std}')
        self.register_buffer('mean', torch.tensor(mean).view(1, 1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std).view(1, 1, 3, 1, 1), persistent=False)

    def forward(self, data: dict, training: bool = False) -> dict:
        """Return ``dict(inputs=..., data_samples=...)`` ready for the matcher."""
        data = self.cast_data(data)
        inputs = data['inputs']
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        if inputs.dim() != 5 or inputs.shape[1:3] != (2, 3):
            raise ValueError(f'image pairs must have shape (B, 2, 3, H, W), got {tuple(inputs.shape)}')
        inputs = (inputs.to(self.mean.dtype) - self.mean) / self.std
        return dict(inputs=inputs, data_samples=data.get('data_samples'))

    def normalize_images(self, images: torch.Tensor) -> torch.Tensor:
        """Single images (not pairs) on the model's device, normalised as pairs are.

        What :meth:`~corrkit.models.base.Matcher.encode` takes when images are
        encoded one by one rather than in pairs.

        Shape:
            - images: ``(N, 3, H, W)``, RGB in ``[0, 255]``
            - output: ``(N, 3, H, W)``, floating, normalised

        Raises:
            ValueError: If ``images`` are not ``(N, 3, H, W)``.
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'images must have shape (N, 3, H, W), got {tuple(images.shape)}')
        images = self.cast_data(images)
        return (images.to(self.mean.dtype) - self.mean[0]) / self.std[0]
