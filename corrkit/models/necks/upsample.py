"""A parameter-free neck that refines every map's grid by an integer factor."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor

from ...ops import resize_features
from ...registry import NECKS
from ..base import Neck
from ._inputs import check_count, checked_inputs, upsampling_factor


@NECKS.register_module()
class UpsampleNeck(Neck):
    """Upsamples every map by an integer factor (bilinear, ``align_corners=True``).

    A finer grid lets the correlation and the head place matches between the
    backbone's cells (a ViT-S/14 gives only 15 × 15 cells at 210 px) without a
    larger input. Each map of ``h × w`` becomes ``factor·h × factor·w`` and its
    stride is divided by ``factor``. For upsampling after a learned aggregation
    use :class:`AggregationNeck`'s ``upsample`` instead.

    Args:
        in_channels: Channels of each input map (injected by the matcher).
        in_strides: Stride of each input map in input pixels (injected by the matcher).
        factor: Integer upsampling factor, at least 1; it must divide every
            input stride, so that strides stay whole pixels.

    Raises:
        ValueError: On a factor below 1 or one that does not divide a stride, on
            bad ``in_channels`` / ``in_strides``, or on another number of maps.

    Shape:
        - input: list of ``(N, C_i, h_i, w_i)``
        - output: list of ``(N, C_i, factor * h_i, factor * w_i)``

    Examples:
        >>> neck = UpsampleNeck(in_channels=[8], in_strides=[14], factor=2)
        >>> neck.strides
        [7]
        >>> neck([torch.randn(1, 8, 15, 15)])[0].shape
        torch.Size([1, 8, 30, 30])
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], factor: int = 2):
        super().__init__()
        name = type(self).__name__
        self.in_channels, self.in_strides = checked_inputs(name, in_channels, in_strides)
        self.factor = upsampling_factor(name, factor, self.in_strides)
        self.out_channels = list(self.in_channels)
        self.strides = [s // self.factor for s in self.in_strides]

    def output_sizes(self, in_sizes: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """Every input size times ``factor``."""
        return [(h * self.factor, w * self.factor) for h, w in in_sizes]

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Return every map upsampled by ``factor``."""
        check_count(type(self).__name__, feats, len(self.in_channels))
        return [resize_features(f, (f.shape[-2] * self.factor, f.shape[-1] * self.factor))
                for f in feats]

