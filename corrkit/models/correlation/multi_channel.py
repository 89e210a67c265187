"""Multi-channel cosine correlation (TransforMatcher Eq. 4)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...ops import resize_features
from ...registry import CORRELATIONS
from ..base import CorrelationBuilder


@CORRELATIONS.register_module()
class MultiChannelCorrelation(CorrelationBuilder):
    """One cosine-correlation channel per pair of feature maps, on the finest grid.

    Every map is L2-normalised over channels and bilinearly resized
    (``align_corners=True``) to the finest grid among the maps; the cosine scores
    of each layer pair pass a ReLU and are stacked as channels. Features are
    never divided: each layer is one matrix product of the raw maps, scaled by
    the inverse norms of its rows and columns.

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
            src, src_scale = self._unit_scale(src, src_size)
            trg, trg_scale = self._unit_scale(trg, trg_size)
            dots = torch.matmul(src.flatten(2).mT, trg.flatten(2))  # (B, HsWs, HtWt)
            channels.append((dots * src_scale[:, :, None] * trg_scale[:, None, :]).clamp_(min=0))
        return torch.stack(channels, dim=1).unflatten(2, src_size).unflatten(-1, trg_size)

    def check_counts(self, src_feats: Sequence[Tensor], trg_feats: Sequence[Tensor]) -> None:
        """Raise ``ValueError`` unless both lists hold one map per ``in_channels`` entry."""
        n = len(self.in_channels)
        if len(src_feats) != n or len(trg_feats) != n:
            raise ValueError(f'{type(self).__name__} expected {n} source and target maps, got '
                             f'{len(src_feats)} and {len(trg_feats)}')

    def _unit_scale(self, feats: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
        """The map at ``size`` and, per position, the factor that makes it unit length.

        Normalising, resizing and normalising again (the definition) is applied as
        a factor on the scores instead of a division of the features: a map
        already at ``size`` is never rewritten. Unresized, the two normalisations
        (``F.normalize``, then ``x / (|x| + eps)``) amount to ``1 / (n + eps ·
        max(n, eps))`` for a feature of norm ``n``.
        """
        if tuple(feats.shape[-2:]) != tuple(size):
            feats = resize_features(F.normalize(feats, dim=1, eps=self.eps), size)
            return feats, 1 / (feats.norm(dim=1).flatten(1) + self.eps)
        norm = feats.norm(dim=1).flatten(1)
        return feats, 1 / (norm + self.eps * norm.clamp(min=self.eps))


def finest_size(feats: Sequence[Tensor]) -> tuple[int, int]:
    """The largest ``(H, W)`` among feature maps (the grid every layer is resized to)."""
    return max((tuple(f.shape[-2:]) for f in feats), key=lambda hw: hw[0] * hw[1])
