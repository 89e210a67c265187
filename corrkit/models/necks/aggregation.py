"""A learned adapter that merges a backbone's maps into one (GeoAware-SC's post-processor)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from ...ops import resize_features
from ...registry import NECKS
from ..base import Neck
from ._inputs import check_count, checked_inputs, finest, upsampling_factor


class _BottleneckBlock(nn.Module):
    """``x + conv1x1(act(norm(conv3x3(act(norm(conv1x1(x)))))))``, starting as the identity."""

    def __init__(self, channels: int, hidden: int, groups: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.GroupNorm(groups, hidden), nn.GELU(),
            nn.Conv2d(hidden, hidden, 3, padding=1), nn.GroupNorm(groups, hidden), nn.GELU(),
            nn.Conv2d(hidden, channels, 1))
        # a zero last conv makes the block the identity at the start, so an untrained
        # adapter matches like the (projected) frozen features instead of like noise
        nn.init.zeros_(self.body[-1].weight)
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


@NECKS.register_module()
class AggregationNeck(Neck):
    """Projects every map to one width, mixes them with learned weights, refines and upsamples.

    In the spirit of the post-processor of GeoAware-SC (Zhang et al., "Telling
    Left from Right", CVPR 2024), which adapts frozen foundation features for
    matching with a few learned layers:

    1. each input map goes through its own 1 × 1 convolution to ``out_channels``
       and is resized to the finest input grid (bilinear, ``align_corners=True``;
       projecting first, since projection and bilinear resizing commute);
    2. the maps are summed with softmax-normalised learned layer weights;
    3. ``num_blocks`` residual bottleneck blocks (1 × 1 conv to ``hidden_channels``,
       3 × 3 conv, 1 × 1 conv back, GroupNorm and GELU between) refine the sum;
       GroupNorm, unlike BatchNorm, behaves the same at batch 1 and in training;
    4. an optional bilinear upsampling by the integer ``upsample`` divides the
       stride accordingly.

    It returns one map. Initialisation starts close to zero-shot matching of the
    frozen features: layer weights start uniform (the mean of the maps), the
    projections orthogonal (a random subspace, which roughly keeps cosine
    similarities) and each block's last convolution zero (blocks start as the
    identity).

    Args:
        in_channels: Channels of each input map (injected by the matcher).
        in_strides: Stride of each input map in input pixels (injected by the matcher).
        out_channels: Width of the output map. The default 256 keeps the adapter
            small: about 0.53 M parameters on four 384-channel ViT-S maps.
        num_blocks: Residual blocks after the mix; 0 leaves the weighted sum of
            projections.
        hidden_channels: Width inside each block; ``None`` means
            ``out_channels // 4`` (a ResNet bottleneck).
        norm_groups: GroupNorm groups inside the blocks; must divide the hidden width.
        upsample: Integer factor of the final bilinear upsampling (1: none); it
            must divide the finest input stride.

    Raises:
        ValueError: On bad ``in_channels`` / ``in_strides``, a width below 1,
            ``norm_groups`` that does not divide the hidden width, a bad
            ``upsample``, or another number of maps at run time.

    Shape:
        - input: list of ``(N, C_i, h_i, w_i)``, one per ``in_channels`` entry
        - output: one ``(N, out_channels, upsample * h, upsample * w)`` map, with
          ``(h, w)`` the largest input grid, at stride ``min(in_strides) / upsample``

    Examples:
        >>> neck = AggregationNeck(in_channels=[8, 16], in_strides=[8, 16], out_channels=16,
        ...                        num_blocks=1, norm_groups=2, upsample=2)
        >>> neck.out_channels, neck.strides
        ([16], [4])
        >>> [tuple(f.shape) for f in neck([torch.randn(1, 8, 6, 5), torch.randn(1, 16, 3, 3)])]
        [(1, 16, 12, 10)]
        >>> neck.output_sizes([(6, 5), (3, 3)])
        [(12, 10)]
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int],
                 out_channels: int = 256, num_blocks: int = 2,
                 hidden_channels: int | None = None, norm_groups: int = 8, upsample: int = 1):
        super().__init__()
        name = type(self).__name__
        self.in_channels, self.in_strides = checked_inputs(name, in_channels, in_strides)
        hidden = out_channels // 4 if hidden_channels is None else hidden_channels
        if out_channels < 1 or hidden < 1 or num_blocks < 0:
            raise ValueError(f'{name} needs out_channels >= 1, hidden_channels >= 1 and '
                             f'num_blocks >= 0, got {out_channels}, {hidden} and {num_blocks}')
        if num_blocks and (norm_groups < 1 or hidden % norm_groups):
            raise ValueError(f'{name}.norm_groups={norm_groups} must divide the blocks\' hidden '
                             f'width {hidden} (hidden_channels, default out_channels // 4)')
        self.upsample = upsampling_factor(name, upsample, [min(self.in_strides)])
        self.projections = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in self.in_channels)
        for proj in self.projections:
            nn.init.orthogonal_(proj.weight.view(out_channels, -1))
            nn.init.zeros_(proj.bias)
        self.layer_logits = nn.Parameter(torch.zeros(len(self.in_channels)))
        self.blocks = nn.Sequential(*(_BottleneckBlock(out_channels, hidden, norm_groups)
                                      for _ in range(num_blocks)))
        self.out_channels = [out_channels]
        self.strides = [min(self.in_strides) // self.upsample]

    def layer_weights(self) -> Tensor:
        """The softmax-normalised weight of every input map, ``(len(in_channels),)``."""
        return self.layer_logits.softmax(0)

    def output_sizes(self, in_sizes: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """One size: the largest input grid times ``upsample``."""
        h, w = finest(in_sizes)
        return [(h * self.upsample, w * self.upsample)]

    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Return the one adapted map."""
        check_count(type(self).__name__, feats, len(self.in_channels))
        size = finest([tuple(f.shape[-2:]) for f in feats])
        weights = self.layer_weights().to(feats[0].dtype)
        mixed = sum(w * resize_features(proj(f), size)
                    for w, proj, f in zip(weights, self.projections, feats))
        out = self.blocks(mixed)
        if self.upsample > 1:
            out = resize_features(out, (size[0] * self.upsample, size[1] * self.upsample))
        return [out]
