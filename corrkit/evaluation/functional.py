"""Functional PCK. The reference sizes it compares against are defined in
:mod:`corrkit.structures` (the datasets compute them too) and re-exported here."""
from __future__ import annotations

import torch
from torch import Tensor

from ..structures import REFERENCE_PAD_VALUE, THRESHOLD_KINDS, pck_reference_sizes

__all__ = ['REFERENCE_PAD_VALUE', 'THRESHOLD_KINDS', 'pck', 'pck_reference_sizes']


def pck(pred: Tensor, gt: Tensor, valid: Tensor, ref_size: Tensor | float,
        alpha: float) -> Tensor:
    """Percentage of correct keypoints per pair, as a fraction.

    A valid keypoint is correct when its distance to the ground truth is at most
    ``alpha * ref_size`` (inclusive), all in pixels. ``ref_size`` is the size the
    protocol names, e.g. ``max(h, w)`` of the image (``img``), of the target
    object box (``bbox``) or of the tight box around the valid keypoints
    (``bbox-kp``).

    Args:
        pred: Predicted keypoints ``(x, y)`` in pixels.
        gt: Ground-truth keypoints in pixels.
        valid: Which keypoints count.
        ref_size: Reference size per pair (or one number for all pairs).
        alpha: Tolerance factor.

    Returns:
        Fraction of valid keypoints that are correct; NaN for a pair without any
        valid keypoint (so that it cannot silently count as 0 or 1).

    Shape:
        - pred: ``(B, K, 2)``
        - gt: ``(B, K, 2)``
        - valid: ``(B, K)`` bool
        - ref_size: ``(B,)`` or scalar
        - output: ``(B,)``

    Examples:
        >>> pred = torch.tensor([[[10.0, 0.0], [0.0, 0.0], [50.0, 50.0]]])
        >>> gt = torch.zeros(1, 3, 2)
        >>> pck(pred, gt, torch.tensor([[True, True, False]]), torch.tensor([100.0]), alpha=0.1)
        tensor([1.])
    """
    ref = torch.as_tensor(ref_size, dtype=pred.dtype, device=pred.device)
    ref = ref.expand(pred.shape[0]) if ref.dim() == 0 else ref
    dist = (pred - gt).norm(dim=-1)
    correct = (dist <= alpha * ref[:, None]) & valid
    count = valid.sum(-1)
    frac = correct.sum(-1).to(pred.dtype) / count.clamp(min=1).to(pred.dtype)
    return torch.where(count > 0, frac, torch.full_like(frac, float('nan')))
