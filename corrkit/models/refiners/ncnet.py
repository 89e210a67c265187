"""NC-Net's neighbourhood-consensus refiner: a stack of 4D convolutions."""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ...layers import Conv4d
from ...ops.conv4d import mutual_nn_filter, swap_source_target
from ...registry import REFINERS
from ..base import Refiner


@REFINERS.register_module()
class NCNetRefiner(Refiner):
    """Neighbourhood consensus (Rocco et al., NeurIPS 2018) by stacked 4D convolutions.

    Each layer is a :class:`~corrkit.layers.Conv4d` followed by a ReLU. With
    ``symmetric`` the stack is applied to the correlation and to its transpose
    (source and target swapped) and the two results are added, so swapping the
    images transposes the output. Soft mutual nearest-neighbour filtering
    (:func:`~corrkit.ops.conv4d.mutual_nn_filter`) can be applied before and
    after. Unlike global match-to-match attention, each layer only sees a
    ``k^4`` neighbourhood of every match.

    Args:
        in_channels: Correlation channels ``L`` (injected by the matcher).
        channels: Output channels of each layer; the last is the refiner's
            ``out_channels`` (1 for the flow heads).
        kernel_sizes: One odd kernel size per layer (the same on all four axes).
        symmetric: Sum the stack's outputs on the correlation and its transpose.
        mutual_before: Mutual nearest-neighbour filtering of the input.
        mutual_after: Mutual nearest-neighbour filtering of the output.

    Shape:
        - input: ``(B, L, Hs, Ws, Ht, Wt)``
        - output: ``(B, channels[-1], Hs, Ws, Ht, Wt)``

    Examples:
        >>> refiner = NCNetRefiner(in_channels=2, channels=(4, 1), kernel_sizes=(3, 3))
        >>> refiner(torch.rand(1, 2, 4, 4, 5, 5)).shape
        torch.Size([1, 1, 4, 4, 5, 5])
    """

    def __init__(self, in_channels: int, channels: Sequence[int] = (16, 16, 1),
                 kernel_sizes: Sequence[int] = (5, 5, 5), symmetric: bool = True,
                 mutual_before: bool = True, mutual_after: bool = True):
        super().__init__()
        channels, kernel_sizes = tuple(channels), tuple(kernel_sizes)
        if not channels or len(channels) != len(kernel_sizes):
            raise ValueError(f'channels {channels} and kernel_sizes {kernel_sizes} need one '
                             f'entry per layer (at least one layer)')
        self.in_channels = in_channels
        self.out_channels = channels[-1]
        self.symmetric = symmetric
        self.mutual_before = mutual_before
        self.mutual_after = mutual_after
        layers: list[nn.Module] = []
        for c_in, c_out, k in zip((in_channels,) + channels[:-1], channels, kernel_sizes):
            layers += [Conv4d(c_in, c_out, k), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)

    def convolution_kernels(self) -> list[Tensor]:
        """The kernels of the stacked 4D convolutions, first layer first."""
        return [layer.weight for layer in self.layers if isinstance(layer, Conv4d)]

    def forward(self, corr: Tensor) -> Tensor:
        """Filter, convolve (both ways when symmetric), filter."""
        if self.mutual_before:
            corr = mutual_nn_filter(corr)
        out = self.layers(corr)
        if self.symmetric:
            out = out + swap_source_target(self.layers(swap_source_target(corr)))
        if self.mutual_after:
            out = mutual_nn_filter(out)
        return out
