"""Multi-channel cosine correlation (TransforMatcher Eq. 4)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...ops import rectified_cosine_scores, resize_features
from ...registry import CORRELATIONS
from ..base import CorrelationBuilder


@CORRELATIONS.register_module()
class MultiChannelCorrelation(CorrelationBuilder):
    """One cosine-correlation channel per pair of feature maps, on the finest grid.

    Every map is L2-normalised over channels and bilinearly resized
    (``align_corners=True``) to the finest grid among the maps; the cosine scores
    of each layer pair pass a ReLU and are stacked as channels. Features are
    never divided: each layer is one matrix product of the raw maps, scaled by
    the inverse norms of its rows and columns, with its backward written out
    (:func:`~corrkit.ops.rectified_cosine_scores`).

    Args:
        in_channels: Channels of each feature map (injected from the backbone).
        eps: Added to feature norms.

    Shape:
        - src_feats: list of ``(B, C_i, Hs_i, Ws_i)``
        - trg_feats: list of ``(B, C_i, Ht_i, Wt_i)``
        - output: ``(B, L, Hs, Ws, Ht, Wt)`` with ``L = len(in_channels)`` and
          ``(Hs, Ws)``, ``(Ht, Wt)`` the largest source and target map sizes

    Examples:
        >>> corr = MultiChannelCorrelation(in_channels=[8, 8, 16])
        >>> src = [torch.randn(2, 8, 6, 6), torch.randn(2, 8, 6, 6), torch.randn(2, 16, 3, 3)]
        >>> corr(src, src).shape
        torch.Size([2, 3, 6, 6, 6, 6])
    """

    def __init__(self, in_channels: Sequence[int], eps: float = 1e-5):
        super().__init__()
        if not in_channels:
            raise ValueError(f'{type(self).__name__} needs at least one feature map')
        self.in_channels = list(in_channels)
        self.out_channels = len(self.in_channels)
        self.eps = eps

    def forward(self, src_feats: Sequence[Tensor], trg_feats: Sequence[Tensor]) -> Tensor:
        """Correlate layer ``i`` of the source with layer ``i`` of the target, for every ``i``."""
        self.check_counts(src_feats, trg_feats)
        src_size = finest_size(src_feats)
        trg_size = finest_size(trg_feats)
        channels = []
        for src, trg in zip(src_feats, trg_feats):
            src, src_raw = self._rows(src, src_size)
            trg, trg_raw = self._rows(trg, trg_size)
            channels.append(rectified_cosine_scores(src, trg, self.eps, (src_raw, trg_raw)))
        return torch.stack(channels, dim=1).unflatten(2, src_size).unflatten(-1, trg_size)

    def check_counts(self, src_feats: Sequence[Tensor], trg_feats: Sequence[Tensor]) -> None:
        """Raise ``ValueError`` unless both lists hold one map per ``in_channels`` entry."""
        n = len(self.in_channels)
        if len(src_feats) != n or len(trg_feats) != n:
            raise ValueError(f'{type(self).__name__} expected {n} source and target maps, got '
                             f'{len(src_feats)} and {len(trg_feats)}')

    def _rows(self, feats: Tensor, size: tuple[int, int]) -> tuple[Tensor, bool]:
        """The map at ``size`` as rows ``(B, H · W, C)``, and whether they are raw.

        The normalise–resize–normalise definition is applied as factors on the
        scores (:func:`~corrkit.ops.rectified_cosine_scores`), not as divisions of
        the features: a map already at ``size`` is never rewritten (in channels-last
        memory its rows are a view), and its two normalisations amount to one
        factor per row. A map of another size is normalised and resized first.
        """
        raw = tuple(feats.shape[-2:]) == tuple(size)
        if not raw:
            feats = resize_features(F.normalize(feats, dim=1, eps=self.eps), size)
        return feats.flatten(2).mT, raw


def finest_size(feats: Sequence[Tensor]) -> tuple[int, int]:
    """The largest ``(H, W)`` among feature maps (the grid every layer is resized to)."""
    return max((tuple(f.shape[-2:]) for f in feats), key=lambda hw: hw[0] * hw[1])
