"""Per-keypoint similarity: the source feature at each keypoint against every target location.

A keypoint matcher never builds the 4D correlation: for ``K`` source keypoints
it needs ``K · Ht · Wt`` scores, not ``Hs · Ws · Ht · Wt``.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor


def sample_features(feat: Tensor, kps: Tensor) -> Tensor:
    """Bilinearly sample a feature map at sub-pixel points.

    Points use the project's convention: normalised ``(x, y)`` in ``[-1, 1]`` with
    ``align_corners=True`` (-1 and +1 are the centres of the first and last
    cell), so a point on a cell centre returns that cell's feature exactly.
    Points outside the map read zeros beyond its border.

    Args:
        feat: Feature map.
        kps: Normalised points ``(x, y)``.

    Returns:
        The feature of every point.

    Raises:
        ValueError: If the batch sizes differ or ``kps`` is not ``(B, K, 2)``.

    Shape:
        - feat: ``(B, C, H, W)``
        - kps: ``(B, K, 2)``
        - output: ``(B, K, C)``

    Examples:
        >>> feat = torch.arange(6.0).view(1, 1, 2, 3)
        >>> sample_features(feat, torch.tensor([[[-1.0, -1.0], [0.0, 1.0], [0.5, 0.0]]]))
        tensor([[[0.],
                 [4.],
                 [3.]]])
    """
    if kps.dim() != 3 or kps.shape[-1] != 2 or kps.shape[0] != feat.shape[0]:
        raise ValueError(f'sample_features takes points (B, K, 2) for features (B, C, H, W) of '
                         f'the same batch; got points {tuple(kps.shape)} and features '
                         f'{tuple(feat.shape)}')
    grid = kps.to(feat.dtype)[:, :, None]  # (B, K, 1, 2): grid_sample reads (x, y)
    out = F.grid_sample(feat, grid, mode='bilinear', padding_mode='zeros', align_corners=True)
    return out[..., 0].transpose(1, 2)


def keypoint_similarity(src_feat: Tensor, kps: Tensor, trg_feat: Tensor,
                        eps: float = 1e-5) -> Tensor:
    """Cosine similarity between the source feature at each keypoint and every target location.

    Both maps are L2-normalised over channels; the source map is sampled at each
    keypoint (:func:`sample_features`, bilinear) and the sample normalised
    again, so that a keypoint between cells is a unit vector too. On a cell
    centre the scores are exactly that source cell's row of
    :func:`~corrkit.ops.cosine_correlation_4d`.

    Args:
        src_feat: Source features.
        kps: Normalised source keypoints ``(x, y)``.
        trg_feat: Target features, with the channels of ``src_feat``.
        eps: Added to feature norms so that all-zero features give zero scores.

    Returns:
        ``sim[b, k, yt, xt]``: cosine of the angle between the source feature at
        keypoint ``k`` and ``trg_feat[b, :, yt, xt]``, in ``[-1, 1]``.

    Raises:
        ValueError: If batch or channel sizes differ, or ``kps`` is not ``(B, K, 2)``.

    Shape:
        - src_feat: ``(B, C, Hs, Ws)``
        - kps: ``(B, K, 2)``
        - trg_feat: ``(B, C, Ht, Wt)``
        - output: ``(B, K, Ht, Wt)``

    Examples:
        >>> feats = torch.randn(2, 8, 3, 4)
        >>> corner = torch.tensor([[[1.0, 1.0]], [[1.0, 1.0]]])  # the last cell's centre
        >>> sim = keypoint_similarity(feats, corner, feats)
        >>> sim.shape
        torch.Size([2, 1, 3, 4])
        >>> bool(torch.allclose(sim[:, 0, 2, 3], torch.ones(2), atol=1e-4))
        True
    """
    if src_feat.shape[:2] != trg_feat.shape[:2]:
        raise ValueError(f'source features {tuple(src_feat.shape)} and target features '
                         f'{tuple(trg_feat.shape)} must agree in batch and channel sizes')
    src = sample_features(src_feat / (src_feat.norm(dim=1, keepdim=True) + eps), kps)
    src = src / (src.norm(dim=-1, keepdim=True) + eps)
    trg = trg_feat / (trg_feat.norm(dim=1, keepdim=True) + eps)
    return (src @ trg.flatten(2)).unflatten(-1, trg_feat.shape[-2:])
