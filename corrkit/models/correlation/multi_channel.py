"""Multi-channel cosine correlation (TransforMatcher Eq. 4)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from ...ops import cosine_correlation_4d, resize_features
from ...registry import CORRELATIONS
from ..base import CorrelationBuilder


@CORRELATIONS.register_module()
class MultiChannelCorrelation(CorrelationBuilder):
    """One cosine-correlation channel per pair of feature maps, on the finest grid.

    Every map is L2-normalised over channels and bilinearly resized
    (``align_corners=True``) to the finest grid among the maps; the cosine scores
    of each layer pair pass a ReLU and are stacked as channels. Maps of equal
    shape are correlated in one batched matrix product.

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
            raise ValueError('MultiChannelCorrelation needs at least one feature map')
        self.in_channels = list(in_channels)
        self.out_channels = len(self.in_channels)
        self.eps = eps

    def forward(self, src_feats: Sequence[Tensor], trg_feats: Sequence[Tensor]) -> Tensor:
        """Correlate layer ``i`` of the source with layer ``i`` of the target, for every ``i``."""
        n = len(self.in_channels)
        if len(src_feats) != n or len(trg_feats) != n:
            raise ValueError(f'expected {n} source and target maps, got '
                             f'{len(src_feats)} and {len(trg_feats)}')
        src_size = finest_size(src_feats)
        trg_size = finest_size(trg_feats)
        src = [resize_features(F.normalize(f, dim=1, eps=self.eps), src_size) for f in src_feats]
        trg = [resize_features(F.normalize(f, dim=1, eps=self.eps), trg_size) for f in trg_feats]
        channels: list[Tensor | None] = [None] * len(src)
        for group in group_by_channels(src):
            b = src[group[0]].shape[0]
            corr = cosine_correlation_4d(torch.cat([src[i] for i in group]),
                                         torch.cat([trg[i] for i in group]), eps=self.eps)
            for i, c in zip(group, corr.split(b)):
                channels[i] = c
        return torch.stack(channels, dim=1).clamp(min=0)


def finest_size(feats: Sequence[Tensor]) -> tuple[int, int]:
    """The largest ``(H, W)`` among feature maps (the grid every layer is resized to)."""
    return max((tuple(f.shape[-2:]) for f in feats), key=lambda hw: hw[0] * hw[1])


def group_by_channels(feats: Sequence[Tensor]) -> list[list[int]]:
    """Indices of maps grouped by channel count, so each group is one batched product."""
    groups: dict[int, list[int]] = {}
    for i, f in enumerate(feats):
        groups.setdefault(f.shape[1], []).append(i)
    return list(groups.values())
