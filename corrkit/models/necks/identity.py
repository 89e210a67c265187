"""The neck that changes nothing."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor

from ...registry import NECKS
from ..base import Neck
from ._inputs import check_count, checked_inputs


@NECKS.register_module()
class IdentityNeck(Neck):
    """Returns the backbone's maps as they are.

    A matcher with this neck computes exactly what it computes without one; it is
    the neutral choice where a config wants to name a neck.

    Args:
        in_channels: Channels of each input map (injected by the matcher).
        in_strides: Stride of each input map in input pixels (injected by the matcher).

    Raises:
        ValueError: If ``in_channels`` and ``in_strides`` are empty or differ in
            length, or a map count differs from them at run time.

    Shape:
        - input: list of ``(N, C_i, h_i, w_i)``
        - output: the same list

    Examples:
        >>> neck = IdentityNeck(in_channels=[8, 16], in_strides=[8, 16])
        >>> neck.out_channels, neck.strides
        ([8, 16], [8, 16])
        >>> feats = [torch.randn(1, 8, 4, 4), torch.randn(1, 16, 2, 2)]
        >>> all(a is b for a, b in zip(neck(feats), feats))
        True
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int]):
        super().__init__()
        self.in_channels, self.in_strides = checked_inputs(type(self).__name__, in_channels,
                                                           in_strides)
        self.out_channels = list(self.in_channels)
        self.strides = list(self.in_strides)

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Return the input maps unchanged."""
        check_count(type(self).__name__, feats, len(self.in_channels))
        return list(feats)
