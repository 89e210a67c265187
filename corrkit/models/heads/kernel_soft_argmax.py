"""Kernel soft-argmax flow head (TransforMatcher §4.3)."""
from __future__ import annotations

from torch import Tensor

from ...ops import kernel_soft_argmax_probabilities
from ...registry import FLOW_HEADS
from .soft_argmax import SoftArgmaxHead


@FLOW_HEADS.register_module()
class KernelSoftArgmaxHead(SoftArgmaxHead):
    """4D upsampling, then a Gaussian around each hard argmax before the softmax.

    Args:
        in_channels: Refined correlation channels (injected; must be 1).
        upsample_factor: Integer 4D bilinear upsampling factor (2: 15⁴ → 30⁴).
        sigma: Gaussian standard deviation in cells of the upsampled target grid.
        temperature: Softmax temperature.

    Shape:
        - input: ``(B, 1, Hs, Ws, Ht, Wt)``
        - output: flow ``(B, 2, f Hs, f Ws)`` and probs ``(B, f Hs, f Ws, f Ht, f Wt)``

    Examples:
        >>> head = KernelSoftArgmaxHead(upsample_factor=2, sigma=10.0)
        >>> out = head(torch.rand(2, 1, 4, 4, 4, 4))
        >>> out.flow.shape, out.probs.shape
        (torch.Size([2, 2, 8, 8]), torch.Size([2, 8, 8, 8, 8]))
    """

    def __init__(self, in_channels: int = 1, upsample_factor: int = 2, sigma: float = 10.0,
                 temperature: float = 1.0):
        super().__init__(in_channels, upsample_factor, temperature)
        if sigma <= 0:
            raise ValueError(f'sigma must be positive, got {sigma}')
        self.sigma = sigma

    def probabilities(self, corr: Tensor) -> Tensor:
        """Gaussian-weighted softmax around each source cell's best match."""
        return kernel_soft_argmax_probabilities(corr, self.sigma, self.temperature)
