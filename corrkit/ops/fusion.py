"""Scoring and fusing transferred keypoints: a forward–backward check and robust fusion.

A keypoint carried from a reference to a target is matched back to the reference;
how far it lands from where it started, in the reference's size, says how much to
trust it (:func:`cycle_score`). With several references each target keypoint has
several candidates, one per reference that labels it; :func:`fuse_candidates`
combines them so that one bad reference cannot drag the point, and
:func:`agreement_score` scores the result by how much of the candidates' weight
agrees with it.
"""
from __future__ import annotations

import torch
from torch import Tensor

__all__ = ['FUSIONS', 'agreement_score', 'cycle_score', 'fuse_candidates',
           'weighted_geometric_median']

#: The fusion rules :func:`fuse_candidates` knows.
FUSIONS = ('geometric_median', 'median', 'mean', 'best')


def cycle_score(start: Tensor, back: Tensor, scale: Tensor, confidence: Tensor,
                sigma: float = 0.05, confidence_power: float = 0.5) -> Tensor:
    """How much to trust a transferred point, in ``[0, 1]``.

    ``exp(-½ (d / (sigma · scale))²) · confidence ** confidence_power``, where
    ``d`` is the distance between the reference point and the target point
    matched back to the reference, and ``scale`` the reference's size (its
    instance box's longer side): a point that comes back within 5% of the box
    keeps most of its confidence, one that comes back 15% away keeps 1%.

    Args:
        start: Reference points ``(x, y)``, pixels.
        back: The forward matches matched back to the reference, pixels.
        scale: The reference's size in pixels, per point or broadcastable.
        confidence: The forward match's own confidence in ``[0, 1]``.
        sigma: The distance, as a fraction of ``scale``, that keeps ``e^-½`` of the score.
        confidence_power: Weight of the match's own confidence (0: ignore it).

    Shape:
        - start, back: ``(..., 2)``
        - scale, confidence, output: ``(...)``

    Examples:
        >>> start = torch.tensor([[10., 10.], [10., 10.]])
        >>> back = torch.tensor([[10., 10.], [20., 10.]])  # 0 and 10 px back in a 100 px box
        >>> cycle_score(start, back, torch.tensor(100.), torch.ones(2)).tolist()
        [1.0, 0.1353352814912796]
    """
    distance = (back - start).norm(dim=-1) / scale
    agreement = torch.exp(-0.5 * (distance / sigma).square())
    return agreement * confidence.clamp(0, 1).pow(confidence_power)


def weighted_geometric_median(points: Tensor, weights: Tensor, iterations: int = 64,
                              eps: float = 1e-6) -> Tensor:
    """The point minimising the weighted sum of distances to ``points`` (Weiszfeld).

    Unlike the mean, it moves by a bounded amount when one point goes far away
    (breakdown point ½ of the weight). Points of zero weight are ignored; a row
    whose weights are all zero gets NaN.

    Args:
        points: Candidates ``(x, y)``.
        weights: Non-negative weights.
        iterations: Weiszfeld steps. It converges linearly: 64 steps reach a hundredth
            of a pixel on most sets of keypoint candidates, but where the weight is split
            almost evenly between distant groups the sum of distances is nearly flat and
            the point may stop far from its minimum, with a sum within 1% of the least.
        eps: Distances below it count as ``eps`` (the iteration's singularity).

    Shape:
        - points: ``(..., K, 2)``
        - weights: ``(..., K)``
        - output: ``(..., 2)``

    Examples:
        >>> pts = torch.tensor([[0., 0.], [1., 0.], [0., 1.], [100., 100.]])
        >>> weighted_geometric_median(pts, torch.ones(4)).round(decimals=2).tolist()
        [0.5, 0.5]
    """
    weights = weights.clamp(min=0)
    points = _ignored_zeroed(points, weights)
    total = weights.sum(-1, keepdim=True)
    # start at the weighted mean: in the hull, and exact for one candidate
    median = (points * weights[..., None]).sum(-2) / total
    for _ in range(iterations):
        distance = (points - median[..., None, :]).norm(dim=-1).clamp(min=eps)
        inverse = weights / distance
        median = (points * inverse[..., None]).sum(-2) / inverse.sum(-1, keepdim=True)
    return torch.where(total > 0, median, torch.full_like(median, float('nan')))


def _ignored_zeroed(points: Tensor, weights: Tensor) -> Tensor:
    # a zero-weight candidate may hold anything (NaN, inf): 0 * NaN would still be NaN
    return torch.where(weights[..., None] > 0, points, torch.zeros_like(points))


def _weighted_mean(points: Tensor, weights: Tensor) -> Tensor:
    points = _ignored_zeroed(points, weights)
    return (points * weights[..., None]).sum(-2) / weights.sum(-1, keepdim=True)


def _masked_median(points: Tensor, valid: Tensor) -> Tensor:
    """Each coordinate's median over the valid candidates (the lower of the two middle
    values for an even count)."""
    big = torch.where(valid[..., None], points, torch.full_like(points, float('inf')))
    ordered = big.sort(dim=-2).values
    middle = ((valid.sum(-1) - 1).clamp(min=0) // 2)[..., None, None].expand(
        *points.shape[:-2], 1, 2)
    return ordered.gather(-2, middle).squeeze(-2)


def fuse_candidates(points: Tensor, scores: Tensor, valid: Tensor,
                    method: str = 'geometric_median') -> Tensor:
    """One point from the candidates of several references.

    Methods: ``'geometric_median'`` (weighted by the scores, robust: one far
    candidate moves it by a bounded amount), ``'median'`` (each coordinate's plain
    median, unweighted), ``'mean'`` (weighted by the scores) and ``'best'`` (the
    highest-scoring candidate).

    Args:
        points: Candidates in target pixels, one per reference.
        scores: Their scores in ``[0, 1]`` (:func:`cycle_score`).
        valid: Which candidates exist (the reference labels that keypoint).
        method: One of :data:`FUSIONS`.

    Returns:
        The fused points, NaN where no candidate is valid.

    Raises:
        ValueError: If ``method`` is unknown.

    Shape:
        - points: ``(..., K, 2)``
        - scores, valid: ``(..., K)``
        - output: ``(..., 2)``

    Examples:
        >>> pts = torch.tensor([[[10., 10.], [12., 10.], [90., 90.]]])
        >>> ok = torch.ones(1, 3, dtype=torch.bool)
        >>> fuse_candidates(pts, torch.tensor([[0.9, 0.8, 0.9]]), ok).round().tolist()
        [[12.0, 10.0]]
        >>> fuse_candidates(pts, torch.tensor([[0.9, 0.8, 0.9]]), ok, 'mean').round().tolist()
        [[38.0, 38.0]]
    """
    if method not in FUSIONS:
        raise ValueError(f'unknown fusion {method!r}; choose one of {list(FUSIONS)}')
    weights = _weights(scores, valid)
    if method == 'geometric_median':
        fused = weighted_geometric_median(points, weights)
    elif method == 'median':
        fused = _masked_median(points, valid)
    elif method == 'mean':
        fused = _weighted_mean(points, weights)
    else:
        best = weights.argmax(-1)[..., None, None].expand(*points.shape[:-2], 1, 2)
        fused = points.gather(-2, best).squeeze(-2)
    return torch.where(valid.any(-1)[..., None], fused, torch.full_like(fused, float('nan')))


def _weights(scores: Tensor, valid: Tensor) -> Tensor:
    # a tiny floor: candidates scored 0 still count when all are (their mean, not NaN)
    return torch.where(valid, scores.clamp(0, 1) + 1e-6, torch.zeros_like(scores))


def agreement_score(points: Tensor, scores: Tensor, valid: Tensor, fused: Tensor,
                    scale: Tensor, agreement: float = 0.05) -> Tensor:
    """The score of a fused point: how much of its candidates' weight agrees with it,
    times the mean score of those that agree.

    A candidate agrees with weight ``exp(-½ (d / (agreement · scale))²)`` at
    distance ``d`` from the fused point. A lone candidate keeps its own score,
    candidates that agree keep theirs, and a point on which the references
    disagree loses score.

    Args:
        points: The candidates, as for :func:`fuse_candidates`.
        scores: Their scores.
        valid: Which candidates exist.
        fused: The fused points.
        scale: The object's size in target pixels, broadcastable to ``(...)``.
        agreement: Distance, as a fraction of ``scale``, of agreement ``e^-½``.

    Returns:
        Scores in ``[0, 1]`` (0 where no candidate is valid).

    Shape:
        - fused: ``(..., 2)``
        - output: ``(...)``

    Examples:
        >>> pts = torch.tensor([[[10., 10.], [12., 10.], [90., 90.]]])
        >>> ok = torch.ones(1, 3, dtype=torch.bool)
        >>> s = torch.tensor([[0.9, 0.8, 0.9]])
        >>> score = agreement_score(pts, s, ok, torch.tensor([[12., 10.]]), torch.tensor(100.))
        >>> round(score.item(), 2)  # two of three agree
        0.53
    """
    weights = _weights(scores, valid)
    distance = (points - fused[..., None, :]).norm(dim=-1) / scale[..., None]
    agree = torch.nan_to_num(torch.exp(-0.5 * (distance / agreement).square())) * valid
    support = (weights * agree).sum(-1) / weights.sum(-1).clamp(min=1e-12)
    quality = (scores * agree).sum(-1) / agree.sum(-1).clamp(min=1e-12)
    return torch.where(valid.any(-1), support * quality, torch.zeros_like(support))
