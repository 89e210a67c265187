"""A 4D convolution layer for correlation tensors."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..ops.conv4d import conv4d


class Conv4d(nn.Module):
    """Zero-padded 4D convolution over ``(Hs, Ws, Ht, Wt)``; the output keeps the grid.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        kernel_size: One odd size for all four axes, or four odd sizes.
        bias: Learn an additive bias per output channel.

    Shape:
        - input: ``(B, in_channels, Hs, Ws, Ht, Wt)``
        - output: ``(B, out_channels, Hs, Ws, Ht, Wt)``

    Examples:
        >>> conv = Conv4d(2, 4, kernel_size=3)
        >>> conv(torch.rand(1, 2, 5, 5, 4, 4)).shape
        torch.Size([1, 4, 5, 5, 4, 4])
    """

    def __init__(self, in_channels: int, out_channels: int,
                 kernel_size: int | Sequence[int] = 3, bias: bool = True):
        super().__init__()
        sizes = (kernel_size,) * 4 if isinstance(kernel_size, int) else tuple(kernel_size)
        if len(sizes) != 4 or any(int(k) != k or k < 1 or k % 2 == 0 for k in sizes):
            raise ValueError(f'kernel_size must be one odd size or four odd sizes, '
                             f'got {kernel_size!r}')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = tuple(int(k) for k in sizes)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, *self.kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation of ``nn.Conv3d``, extended to four kernel axes."""
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in = self.weight[0].numel()
            bound = 1 / math.sqrt(fan_in)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """Convolve ``x`` with zero padding of half the kernel on every axis."""
        return conv4d(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, '
                f'bias={self.bias is not None}')
