"""Window soft-argmax keypoint head: nearest neighbour refined by a local soft-argmax."""
from __future__ import annotations

from torch import Tensor

from ...ops import expected_position_2d, spatial_softmax_2d, window_mask_2d, window_softmax_2d
from ...registry import KEYPOINT_HEADS
from ..base import KeypointHead, KeypointPrediction


@KEYPOINT_HEADS.register_module()
class WindowSoftArgmaxHead(KeypointHead):
    """Hard argmax of each similarity map, refined by a softmax inside a window around it.

    What GeoAware-SC (Zhang et al., CVPR 2024) and its successors evaluate with:
    the argmax picks the mode, so a distant second peak cannot pull the
    prediction, and the soft-argmax over the ``window`` × ``window`` box around
    it (clipped at the borders, not shifted inwards) gives sub-cell precision.
    Differentiable with respect to the scores inside the box
    (:func:`~corrkit.ops.window_soft_argmax_2d`).

    Confidence is the probability mass inside the box under the softmax over
    *all* cells: near 1 when the similarity has one clear peak, low when much
    of it lies elsewhere (an ambiguous keypoint, a symmetric part).

    Args:
        window: Side of the box in target cells, odd, at least 3. The default 15 is
            GeoAware-SC's ``SOFT_EVAL_WINDOW = 7`` (a box of ``2 · 7 + 1`` cells
            on its 60 × 60 grid).
        temperature: Fixed softmax temperature (not learned). The default 0.02
            is SFNet's ``beta`` that GeoAware-SC's window soft-argmax uses, on
            cosine scores in ``[-1, 1]``.

    Raises:
        ValueError: If ``window`` is not an odd integer >= 3 or
            ``temperature <= 0``.

    Shape:
        - input: ``(B, K, Ht, Wt)`` similarities
        - output: kps ``(B, K, 2)``, confidence ``(B, K)``

    Examples:
        >>> sim = torch.tensor([[[[0.0, 1.0, 1.0, 0.0, 0.0, 0.99]]]])
        >>> pred = WindowSoftArgmaxHead(window=3)(sim)
        >>> pred.kps, pred.confidence.round(decimals=3)  # the far peak at x = 1 is ignored
        (tensor([[[-0.4000,  0.0000]]]), tensor([[0.7670]]))
    """

    def __init__(self, window: int = 15, temperature: float = 0.02):
        super().__init__()
        # window 1 is the bare argmax, with no gradient: that is NearestNeighbourHead
        if isinstance(window, bool) or int(window) != window or window < 3 or window % 2 == 0:
            raise ValueError(f'{type(self).__name__}.window must be an odd number of cells >= 3 '
                             f'(1 is NearestNeighbourHead), got {window!r}')
        if not temperature > 0:
            raise ValueError(f'{type(self).__name__}.temperature must be > 0, got {temperature!r}')
        self.window = int(window)
        self.temperature = temperature

    def forward(self, similarity: Tensor) -> KeypointPrediction:
        """Return the expected position inside each map's window and the mass inside it."""
        # the box's own softmax, not the global one renormalised: mathematically
        # equal, but only this gives cells outside the box exactly zero gradient
        local = window_softmax_2d(similarity, self.window, self.temperature)
        mask = window_mask_2d(similarity, self.window)
        inside = (spatial_softmax_2d(similarity, self.temperature) * mask).flatten(-2).sum(-1)
        return KeypointPrediction(expected_position_2d(local), inside.clamp(0, 1))

    def extra_repr(self) -> str:
        return f'window={self.window}, temperature={self.temperature}'
