"""Nearest-neighbour keypoint head: the hard argmax of each similarity map."""
from __future__ import annotations

from typing import ClassVar

from torch import Tensor

from ...ops import argmax_2d
from ...registry import KEYPOINT_HEADS
from ..base import KeypointHead, KeypointPrediction


@KEYPOINT_HEADS.register_module()
class NearestNeighbourHead(KeypointHead):
    """The centre of the target cell most similar to each source keypoint.

    The zero-shot baseline of DIFT and GeoAware-SC: no parameters, no
    sub-cell refinement, so the error is up to half a cell. Not differentiable
    with respect to the similarity (``differentiable = False``): train with a
    :class:`~corrkit.models.base.SimilarityLoss`, which reads the similarity
    itself.

    Confidence is the best similarity mapped from the cosine range to ``[0, 1]``,
    ``clamp((max + 1) / 2, 0, 1)``: 1 for a perfect match, 0.5 for an orthogonal
    feature. Scores outside ``[-1, 1]`` are clamped.

    Shape:
        - input: ``(B, K, Ht, Wt)`` similarities
        - output: kps ``(B, K, 2)``, confidence ``(B, K)``

    Examples:
        >>> sim = torch.zeros(1, 1, 3, 3)
        >>> sim[0, 0, 0, 2] = 0.8
        >>> NearestNeighbourHead()(sim)
        KeypointPrediction(kps=tensor([[[ 1., -1.]]]), confidence=tensor([[0.9000]]))
    """

    differentiable: ClassVar[bool] = False

    def forward(self, similarity: Tensor) -> KeypointPrediction:
        """Return each map's argmax and its score mapped to ``[0, 1]``."""
        confidence = ((similarity.flatten(-2).amax(dim=-1) + 1) / 2).clamp(0, 1)
        return KeypointPrediction(argmax_2d(similarity), confidence)
