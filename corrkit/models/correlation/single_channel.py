"""Single-channel correlations for the supplementary's Table A2 (TransforMatcher §B)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from ...ops import cosine_correlation_4d, resize_features
from ...registry import CORRELATIONS
from .multi_channel import MultiChannelCorrelation, finest_size


@CORRELATIONS.register_module()
class ConcatCorrelation(MultiChannelCorrelation):
    """One cosine correlation of the layers' features concatenated along channels.

    Every map is bilinearly resized (``align_corners=True``) to the finest grid, the
    maps are concatenated as they come out of the backbone, and the cosine scores
    of the concatenated vectors pass a ReLU: Table A2's *Single_concat*. The layers
    are not normalised one by one before concatenation (with that, the cosine
    would be the mean of the per-layer cosines, i.e. :class:`MeanCorrelation` up to
    where the ReLU sits), so layers with larger activations weigh more. It takes
    the inputs of :class:`MultiChannelCorrelation`, whose checks it reuses.

    Args:
        in_channels: Channels of each feature map (injected from the backbone).
        eps: Added to feature norms.

    Shape:
        - src_feats: list of ``(B, C_i, Hs_i, Ws_i)``
        - trg_feats: list of ``(B, C_i, Ht_i, Wt_i)``
        - output: ``(B, 1, Hs, Ws, Ht, Wt)`` on the finest source and target grids

    Examples:
        >>> corr = ConcatCorrelation(in_channels=[8, 16])
        >>> corr([torch.randn(2, 8, 6, 6), torch.randn(2, 16, 3, 3)],
        ...      [torch.randn(2, 8, 5, 5), torch.randn(2, 16, 3, 3)]).shape
        torch.Size([2, 1, 6, 6, 5, 5])
    """

    def __init__(self, in_channels: Sequence[int], eps: float = 1e-5):
        super().__init__(in_channels, eps)
        self.out_channels = 1

    def forward(self, src_feats: Sequence[Tensor], trg_feats: Sequence[Tensor]) -> Tensor:
        """Cosine correlation of the concatenated, resized layers."""
        self.check_counts(src_feats, trg_feats)
        src_size, trg_size = finest_size(src_feats), finest_size(trg_feats)
        src = torch.cat([resize_features(f, src_size) for f in src_feats], dim=1)
        trg = torch.cat([resize_features(f, trg_size) for f in trg_feats], dim=1)
        return cosine_correlation_4d(src, trg, eps=self.eps).unsqueeze(1).clamp(min=0)


@CORRELATIONS.register_module()
class MeanCorrelation(MultiChannelCorrelation):
    """The mean over layers of :class:`MultiChannelCorrelation`: one channel.

    Table A2's *Single_mean*: the per-layer ReLU'd cosine maps are computed as in
    the multi-channel builder and averaged, so the refiner sees one score per
    match instead of ``L`` features. (:class:`~corrkit.models.refiners.MeanRefiner`
    applies the same average after a multi-channel builder, as a zero-shot refiner.)

    Args:
        in_channels: Channels of each feature map (injected from the backbone).
        eps: Added to feature norms.

    Shape:
        - src_feats: list of ``(B, C_i, Hs_i, Ws_i)``
        - trg_feats: list of ``(B, C_i, Ht_i, Wt_i)``
        - output: ``(B, 1, Hs, Ws, Ht, Wt)``

    Examples:
        >>> corr = MeanCorrelation(in_channels=[8, 8])
        >>> corr([torch.randn(1, 8, 4, 4)] * 2, [torch.randn(1, 8, 3, 3)] * 2).shape
        torch.Size([1, 1, 4, 4, 3, 3])
    """

    def __init__(self, in_channels: Sequence[int], eps: float = 1e-5):
        super().__init__(in_channels, eps)
        self.out_channels = 1

    def forward(self, src_feats: Sequence[Tensor], trg_feats: Sequence[Tensor]) -> Tensor:
        """Average the multi-channel correlation over its layers."""
        return super().forward(src_feats, trg_feats).mean(dim=1, keepdim=True)
