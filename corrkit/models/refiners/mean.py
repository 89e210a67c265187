"""The parameter-free zero-shot baseline refiner."""
from __future__ import annotations

from torch import Tensor

from ...registry import REFINERS
from ..base import Refiner


@REFINERS.register_module()
class MeanRefiner(Refiner):
    """Averages the correlation channels; no parameters, no training.

    With pretrained features this is the zero-shot hypercolumn-matching baseline
    that a trained refiner has to beat.

    Args:
        in_channels: Correlation channels ``L`` (injected by the matcher).

    Shape:
        - input: ``(B, L, Hs, Ws, Ht, Wt)``
        - output: ``(B, 1, Hs, Ws, Ht, Wt)``

    Examples:
        >>> MeanRefiner(in_channels=2)(torch.ones(1, 2, 2, 2, 2, 2)).shape
        torch.Size([1, 1, 2, 2, 2, 2])
    """

    def __init__(self, in_channels: int = 1):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 1

    def forward(self, corr: Tensor) -> Tensor:
        """Mean over the channel dimension."""
        return corr.mean(dim=1, keepdim=True)
