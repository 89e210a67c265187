"""Functional PCK."""
from __future__ import annotations

import torch
from torch import Tensor


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


#: Names of the PCK reference sizes, see :func:`pck_reference_sizes`.
THRESHOLD_KINDS = ('img', 'bbox', 'bbox-kp', 'bbox-kp-padded')

#: The sentinel TransforMatcher's reference code pads keypoint arrays with before
#: taking their box (DHPF's code uses -1, CATs' -1 on the source image).
REFERENCE_PAD_VALUE = -2.0


def pck_reference_sizes(img_shape: tuple[int, int], trg_kps: Tensor, valid: Tensor,
                        trg_bbox: Tensor | None = None) -> dict[str, float]:
    """The PCK reference sizes of one pair, in pixels of the evaluation frame.

    - ``img``: ``max(H, W)`` of the (resized) target image. PF-PASCAL's protocol.
    - ``bbox``: ``max(w, h)`` of the target object box. SPair-71k's protocol.
    - ``bbox-kp``: ``max(w, h)`` of the tight box around the valid target
      keypoints. PF-WILLOW's protocol.
    - ``bbox-kp-padded``: the looser variant that public code of several peers
      reports as PF-WILLOW ``bbox``: their keypoint arrays are padded with a
      sentinel (``-2`` in TransforMatcher's code) before the box is taken, so
      the box always reaches back to ``(-2, -2)``. Kept, under its own name, to
      compare with published numbers.

    Args:
        img_shape: ``(H, W)`` of the target image in the evaluation frame.
        trg_kps: Target keypoints ``(x, y)``.
        valid: Which keypoints are valid.
        trg_bbox: Target object box ``[x1, y1, x2, y2]``, if annotated.

    Returns:
        A dict from kind to size; ``bbox`` only when a box is given, the
        keypoint kinds only when at least one keypoint is valid.

    Shape:
        - trg_kps: ``(K, 2)``
        - valid: ``(K,)`` bool
        - trg_bbox: ``(4,)``

    Examples:
        >>> kps = torch.tensor([[10.0, 20.0], [50.0, 40.0], [0.0, 0.0]])
        >>> sizes = pck_reference_sizes((240, 200), kps, torch.tensor([True, True, False]),
        ...                             torch.tensor([5.0, 5.0, 105.0, 65.0]))
        >>> {k: round(v, 1) for k, v in sizes.items()}
        {'img': 240.0, 'bbox': 100.0, 'bbox-kp': 40.0, 'bbox-kp-padded': 52.0}
    """
    sizes = {'img': float(max(img_shape))}
    if trg_bbox is not None:
        box = torch.as_tensor(trg_bbox, dtype=torch.float64).reshape(4)
        sizes['bbox'] = float(torch.maximum(box[2] - box[0], box[3] - box[1]))
    points = torch.as_tensor(trg_kps, dtype=torch.float64)[torch.as_tensor(valid, dtype=torch.bool)]
    if len(points):
        low, high = points.min(0).values, points.max(0).values
        sizes['bbox-kp'] = float((high - low).max())
        sizes['bbox-kp-padded'] = float((high - low.clamp(max=REFERENCE_PAD_VALUE)).max())
    return sizes
