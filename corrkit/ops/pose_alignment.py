"""How well two dense feature maps agree: the score that test-time pose alignment compares.

A keypoint matcher with pose alignment matches the source as it is and
mirrored, and keeps the hypothesis whose dense matches are more often mutual
nearest neighbours (GeoAware-SC, "Telling Left from Right", CVPR 2024, flips
the source too; this score needs no segmentation mask).
"""
from __future__ import annotations

import torch
from torch import Tensor


def _nearest(query: Tensor, keys: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    """Score and index of each query cell's most similar key cell, ``chunk`` queries at a time."""
    parts = [(part.transpose(1, 2) @ keys).max(-1) for part in query.split(chunk, dim=2)]
    return torch.cat([p.values for p in parts], 1), torch.cat([p.indices for p in parts], 1)


def mutual_nn_agreement(src_feat: Tensor, trg_feat: Tensor, radius: int = 1,
                        chunk: int = 4096, eps: float = 1e-5) -> Tensor:
    """The mean similarity of the source cells' mutual nearest neighbours.

    For every source cell, its nearest target cell (cosine similarity), then
    that target cell's nearest source cell; the round trip agrees when it ends
    within ``radius`` cells of where it started (Chebyshev distance, so
    ``radius=1`` accepts the 3 × 3 neighbourhood). A cell whose round trip
    agrees contributes its cosine with its nearest target cell, any other cell
    zero; the score is the mean over source cells. Both parts matter: the
    similarity of the best matches is what GeoAware-SC compares between the
    poses (features carry some of an object's orientation), and mutuality
    discounts background cells that match anything a little.

    The full ``Hs · Ws × Ht · Wt`` similarity is never held: nearest neighbours
    are found ``chunk`` cells at a time, so memory is
    ``B · chunk · max(Hs · Ws, Ht · Wt)`` scores (at a 60 × 60 grid with the
    default chunk, 15 M scores per pair).

    Args:
        src_feat: Source features.
        trg_feat: Target features, with the channels of ``src_feat``.
        radius: How far (cells) the round trip may end from its start.
        chunk: Cells whose nearest neighbour is searched at once.
        eps: Added to feature norms so that all-zero features stay finite.

    Returns:
        The agreement of each pair, in ``[-1, 1]`` (1 for identical maps). Not
        differentiable.

    Raises:
        ValueError: If batch or channel sizes differ, or ``radius < 0`` or ``chunk < 1``.

    Shape:
        - src_feat: ``(B, C, Hs, Ws)``
        - trg_feat: ``(B, C, Ht, Wt)``
        - output: ``(B,)``

    Examples:
        >>> feat = torch.randn(2, 16, 5, 6)
        >>> mutual_nn_agreement(feat, feat).round(decimals=4)  # each cell is its own match
        tensor([1., 1.])
        >>> bool((mutual_nn_agreement(feat, torch.randn(2, 16, 5, 6)) < 0.9).all())
        True
    """
    if src_feat.shape[:2] != trg_feat.shape[:2]:
        raise ValueError(f'mutual_nn_agreement: source features {tuple(src_feat.shape)} and '
                         f'target features {tuple(trg_feat.shape)} must agree in batch and '
                         f'channel sizes')
    if radius < 0 or chunk < 1:
        raise ValueError(f'mutual_nn_agreement takes radius >= 0 and chunk >= 1, got '
                         f'radius={radius}, chunk={chunk}')
    src = src_feat.detach().flatten(2)
    trg = trg_feat.detach().flatten(2)
    src = src / (src.norm(dim=1, keepdim=True) + eps)
    trg = trg / (trg.norm(dim=1, keepdim=True) + eps)
    score, forward = _nearest(src, trg, chunk)  # (B, Hs Ws): each source cell's target
    _, backward = _nearest(trg, src, chunk)  # (B, Ht Wt): each target cell's source
    returned = backward.gather(1, forward)
    ws = src_feat.shape[-1]
    start = torch.arange(src.shape[-1], device=src.device)
    rows = (returned // ws - start // ws).abs()
    cols = (returned % ws - start % ws).abs()
    return (score * (torch.maximum(rows, cols) <= radius)).mean(-1).to(src_feat.dtype)
