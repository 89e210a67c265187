"""Plain soft-argmax flow head."""
from __future__ import annotations

from torch import Tensor

from ...ops import expected_target, interpolate_4d, soft_argmax_probabilities, target_to_flow
from ...registry import FLOW_HEADS
from ..base import FlowHead, FlowPrediction


@FLOW_HEADS.register_module()
class SoftArgmaxHead(FlowHead):
    """Optional 4D upsampling, softmax over target cells, expected target position.

    Args:
        in_channels: Refined correlation channels (injected; must be 1).
        upsample_factor: Integer 4D bilinear upsampling factor before the softmax.
        temperature: Softmax temperature (cosine scores in ``[0, 1]`` want a small
            one, e.g. 0.02; learned scores are usually fine with 1).

    Shape:
        - input: ``(B, 1, Hs, Ws, Ht, Wt)``
        - output: flow ``(B, 2, f Hs, f Ws)`` and probs ``(B, f Hs, f Ws, f Ht, f Wt)``

    Raises:
        ValueError: If ``in_channels`` is not 1 or a size is not positive.

    Examples:
        >>> head = SoftArgmaxHead(upsample_factor=2, temperature=0.1)
        >>> head(torch.rand(1, 1, 3, 3, 3, 3)).flow.shape
        torch.Size([1, 2, 6, 6])
    """

    def __init__(self, in_channels: int = 1, upsample_factor: int = 1, temperature: float = 1.0):
        super().__init__()
        if in_channels != 1:
            raise ValueError(f'{type(self).__name__} reads a single correlation channel, but the '
                             f'refiner before it gives {in_channels}; use a refiner with '
                             f'out_channels=1')
        if int(upsample_factor) != upsample_factor or upsample_factor < 1 or temperature <= 0:
            raise ValueError(f'upsample_factor must be an integer >= 1 and temperature > 0, got '
                             f'{upsample_factor} and {temperature}')
        self.in_channels = in_channels
        self.upsample_factor = int(upsample_factor)
        self.temperature = temperature

    def probabilities(self, corr: Tensor) -> Tensor:
        """Match probabilities from (upsampled) scores ``(B, Hs, Ws, Ht, Wt)``."""
        return soft_argmax_probabilities(corr, self.temperature)

    def forward(self, corr: Tensor) -> FlowPrediction:
        """Upsample, normalise over target cells, take the expected target."""
        f = self.upsample_factor
        if f > 1:
            corr = interpolate_4d(corr, tuple(s * f for s in corr.shape[2:]))
        probs = self.probabilities(corr[:, 0])
        return FlowPrediction(target_to_flow(expected_target(probs)), probs)
