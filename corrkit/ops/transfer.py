"""Keypoint transfer through a dense prediction (the soft sampler of TransforMatcher Eq. 11)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from .coords import normalized_grid


def soft_sampler_weights(kps: Tensor, height: int, width: int, tau: float) -> Tensor:
    """Weights ``max(0, tau - d)`` of every grid cell for every keypoint, normalised.

    ``d`` is the distance, in normalised coordinates, between a keypoint and a
    cell centre. A keypoint with no cell closer than ``tau`` takes its nearest
    cell with weight one, so a small ``tau`` on a coarse grid degrades to
    nearest-cell sampling instead of dividing by zero.

    Args:
        kps: Normalised keypoints ``(x, y)``.
        height: Grid rows.
        width: Grid columns.
        tau: Distance threshold in normalised coordinates.

    Returns:
        Weights summing to one over the ``height * width`` cells.

    Shape:
        - kps: ``(B, K, 2)``
        - output: ``(B, K, height * width)``
    """
    cells = rearrange(normalized_grid(height, width, device=kps.device, dtype=kps.dtype),
                      'c h w -> (h w) c')
    dist = (kps[:, :, None, :] - cells).pow(2).sum(-1).sqrt()
    weights = (tau - dist).clamp(min=0)
    total = weights.sum(-1, keepdim=True)
    nearest = F.one_hot(dist.argmin(-1), num_classes=cells.shape[0]).to(kps.dtype)
    return torch.where(total > 0, weights / total.clamp(min=torch.finfo(kps.dtype).tiny), nearest)


def soft_sample(values: Tensor, weights: Tensor) -> Tensor:
    """Per keypoint, the weighted sum of a grid's values (the soft sampler's read-out).

    Args:
        values: Values on a grid, e.g. predicted targets or match probabilities.
        weights: From :func:`soft_sampler_weights` on the same grid.

    Returns:
        Each keypoint's weighted values.

    Shape:
        - values: ``(B, C, H, W)``
        - weights: ``(B, K, H * W)``
        - output: ``(B, K, C)``
    """
    return torch.einsum('bkn,bcn->bkc', weights, values.flatten(2))


def transfer_keypoints(pred_grid: Tensor, kps: Tensor, valid: Tensor, tau: float) -> Tensor:
    """Transfer source keypoints to the target with the soft sampler (Eq. 11).

    Every source keypoint takes the weighted mean of the predicted targets of
    the source cells around it, with weights ``max(0, tau - d)``.

    Args:
        pred_grid: For every source cell, its predicted normalised target
            ``(x, y)`` (for instance :func:`~corrkit.ops.flow_to_target` of a flow).
        kps: Normalised source keypoints ``(x, y)``.
        valid: Which keypoints are real; padded ones come back as zeros.
        tau: Distance threshold of the sampler, in normalised coordinates.

    Returns:
        Predicted normalised target keypoints.

    Shape:
        - pred_grid: ``(B, 2, H, W)``
        - kps: ``(B, K, 2)``
        - valid: ``(B, K)``, bool
        - output: ``(B, K, 2)``

    Examples:
        >>> from corrkit.ops import normalized_grid
        >>> identity = normalized_grid(4, 4)[None]
        >>> kps = torch.tensor([[[-1.0, -1.0], [0.2, 0.4]]])
        >>> transfer_keypoints(identity, kps, torch.tensor([[True, False]]), tau=0.1)
        tensor([[[-1., -1.],
                 [ 0.,  0.]]])
    """
    weights = soft_sampler_weights(kps, pred_grid.shape[-2], pred_grid.shape[-1], tau)
    pred = soft_sample(pred_grid, weights)
    return torch.where(valid[..., None], pred, torch.zeros_like(pred))
