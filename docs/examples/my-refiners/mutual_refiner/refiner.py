"""A refiner that rewards matches both images agree on."""
import torch
from torch import Tensor, nn

from corrkit.models.base import Refiner
from corrkit.registry import REFINERS


@REFINERS.register_module()
class MutualMatchRefiner(Refiner):
    """Mixes the correlation layers, then rewards the matches both images agree on.

    A linear map mixes the ``L`` layers into one score per match; it starts as their
    mean, the zero-shot baseline. To each score it adds ``weight`` times the match's
    log-probability among its source cell's candidates plus its log-probability among
    its target cell's candidates, so a match that is the best both ways gains on one
    that is the best one way only. ``weight`` starts at zero: training starts from
    the zero-shot matches.

    Args:
        in_channels: Correlation channels ``L`` (injected by the matcher).
        temperature: Softness of the two log-probabilities (cosine scores).

    Shape:
        - input: ``(B, L, Hs, Ws, Ht, Wt)``
        - output: ``(B, 1, Hs, Ws, Ht, Wt)``
    """

    def __init__(self, in_channels: int, temperature: float = 0.02):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = 1
        self.temperature = temperature
        self.mix = nn.Linear(in_channels, 1)
        nn.init.constant_(self.mix.weight, 1.0 / in_channels)
        nn.init.zeros_(self.mix.bias)
        self.weight = nn.Parameter(torch.zeros(()))

    def forward(self, corr: Tensor) -> Tensor:
        b, _, hs, ws, ht, wt = corr.shape
        scores = self.mix(corr.movedim(1, -1)).reshape(b, hs * ws, ht * wt)
        logits = scores / self.temperature
        mutual = logits.log_softmax(dim=2) + logits.log_softmax(dim=1)
        return (scores + self.weight * mutual).reshape(b, 1, hs, ws, ht, wt)
