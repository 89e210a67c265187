"""A learned convex combination of correlation layers."""
import torch
from torch import Tensor, nn

from corrkit.models.base import Refiner
from corrkit.registry import REFINERS


@REFINERS.register_module()
class LayerWeightedRefiner(Refiner):
    """Softmax-weighted sum of the correlation channels, times a learned scale.

    ``L + 1`` parameters: a logit per layer (all layers equal at start, as in
    the mean refiner) and the scale that sharpens cosine scores for the head's
    softmax.

    Args:
        in_channels: Correlation channels ``L`` (injected by the matcher).
        init_scale: Initial multiplier of the combined scores.

    Shape:
        - input: ``(B, L, Hs, Ws, Ht, Wt)``
        - output: ``(B, 1, Hs, Ws, Ht, Wt)``
    """

    def __init__(self, in_channels: int, init_scale: float = 50.0):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 1
        self.layer_logits = nn.Parameter(torch.zeros(in_channels))
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))

    def forward(self, corr: Tensor) -> Tensor:
        weights = torch.softmax(self.layer_logits, dim=0)
        return self.scale * torch.einsum('bl...,l->b...', corr, weights).unsqueeze(1)
