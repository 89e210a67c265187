"""L2 keypoint loss (TransforMatcher Eq. 12), squared or plain."""
from __future__ import annotations

from torch import Tensor, nn

from ...registry import LOSSES


@LOSSES.register_module()
class KeypointL2Loss(nn.Module):
    """Distance between predicted and true keypoints, masked.

    Averaged over the valid keypoints of each pair, then over the pairs that have
    at least one valid keypoint (a pair without any contributes nothing). The
    squared distance (the default, as in the reference implementation) weighs
    large errors most; the plain Euclidean distance (``squared=False``, the
    paper's wording) keeps pulling on small ones, which favours fine accuracy
    (PCK at small α).

    Args:
        loss_weight: Multiplier of the loss.
        squared: Squared distance (default) or Euclidean distance.

    Shape:
        - pred: ``(B, K, 2)`` normalised coordinates
        - target: ``(B, K, 2)``
        - valid: ``(B, K)`` bool
        - output: scalar

    Examples:
        >>> loss = KeypointL2Loss()
        >>> pred, gt = torch.zeros(1, 2, 2), torch.tensor([[[3.0, 4.0], [9.0, 9.0]]])
        >>> loss(pred, gt, torch.tensor([[True, False]]))
        tensor(25.)
        >>> KeypointL2Loss(squared=False)(pred, gt, torch.tensor([[True, False]]))
        tensor(5.)
    """

    def __init__(self, loss_weight: float = 1.0, squared: bool = True):
        super().__init__()
        self.loss_weight = loss_weight
        self.squared = squared

    def forward(self, pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
        """Return the weighted mean (squared) distance over valid keypoints."""
        dist = (pred - target).pow(2).sum(-1)
        if not self.squared:  # the epsilon keeps the gradient finite at zero error
            dist = (dist + 1e-12).sqrt()
        dist = dist * valid
        count = valid.sum(-1)
        has_kps = count > 0
        per_pair = dist.sum(-1) / count.clamp(min=1)
        if not has_kps.any():
            return pred.sum() * 0.0
        return self.loss_weight * per_pair[has_kps].mean()
