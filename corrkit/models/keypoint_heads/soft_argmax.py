"""Soft-argmax keypoint head: the expected position under a softmax over all target cells."""
from __future__ import annotations

from torch import Tensor

from ...ops import expected_position_2d, spatial_softmax_2d
from ...registry import KEYPOINT_HEADS
from ..base import KeypointHead, KeypointPrediction


@KEYPOINT_HEADS.register_module()
class SoftArgmaxKeypointHead(KeypointHead):
    """Softmax of each similarity map over all target cells, expected position.

    Differentiable everywhere, but a distant second peak (a symmetric part,
    the other eye) pulls the prediction towards the middle of the two; the
    window soft-argmax (:class:`WindowSoftArgmaxHead`) avoids that.

    Confidence is the peak probability, the largest entry of the softmax: near
    1 when one cell dominates, ``1 / (Ht · Wt)`` for a flat map.

    Args:
        temperature: Fixed softmax temperature (not learned). The default 0.02
            is SFNet's (Lee et al., CVPR 2019) ``beta``, which GeoAware-SC and DIFT
            evaluation code reuse on cosine scores in ``[-1, 1]``.

    Raises:
        ValueError: If ``temperature <= 0``.

    Shape:
        - input: ``(B, K, Ht, Wt)`` similarities
        - output: kps ``(B, K, 2)``, confidence ``(B, K)``

    Examples:
        >>> sim = torch.full((1, 1, 3, 3), -1.0)
        >>> sim[0, 0, 2, 0] = 1.0
        >>> pred = SoftArgmaxKeypointHead()(sim)
        >>> pred.kps.round(decimals=3), pred.confidence.round(decimals=3)
        (tensor([[[-1.,  1.]]]), tensor([[1.]]))
    """

    def __init__(self, temperature: float = 0.02):
        super().__init__()
        if not temperature > 0:
            raise ValueError(f'{type(self).__name__}.temperature must be > 0, got {temperature!r}')
        self.temperature = temperature

    def forward(self, similarity: Tensor) -> KeypointPrediction:
        """Return the expected position and the peak probability of each map."""
        probs = spatial_softmax_2d(similarity, self.temperature)
        return KeypointPrediction(expected_position_2d(probs), probs.flatten(-2).amax(dim=-1))

    def extra_repr(self) -> str:
        return f'temperature={self.temperature}'
