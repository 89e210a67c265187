"""A learned adapter that merges a backbone's maps into one (GeoAware-SC's post-processor)."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

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
    """Projects every map to one width, mixes them with learned weights, upsamples and refines.

    In the spirit of the post-processor of GeoAware-SC (Zhang et al., "Telling
    Left from Right", CVPR 2024), which adapts frozen foundation features for
    matching with a few learned layers:

    1. each input map goes through its own 1 × 1 convolution to ``out_channels``
       and is resized to the finest input grid (bilinear, ``align_corners=True``;
       projecting first, since projection and bilinear resizing commute);
    2. the maps are summed with softmax-normalised learned layer weights;
    3. an optional bilinear upsampling by the integer ``upsample`` divides the
       stride accordingly;
    4. ``num_blocks`` residual bottleneck blocks (1 × 1 conv to ``hidden_channels``,
       3 × 3 conv, 1 × 1 conv back, GroupNorm and GELU between) refine the sum at
       the output resolution, so that they can learn to sharpen what the
       upsampling blurs; GroupNorm, unlike BatchNorm, behaves the same at batch 1
       and in training.

    It returns one map. With ``normalize_inputs`` every input map is first
    L2-normalised along its channels, so that each map weighs the same whatever
    its scale, and multiplied by ``sqrt(out_channels)``, so that an output
    channel is of order one: the residual blocks (whose normalisation makes
    their branch's size independent of the input's) then start as small
    corrections instead of overwhelming features of norm one spread over
    hundreds of channels. Initialisation starts at, or close to, zero-shot matching of the
    frozen features: layer weights start uniform (the mean of the maps) and each
    block's last convolution zero (blocks start as the identity). The
    projections start in one of two ways:

    - ``out_channels=None`` (the *concatenation start*): the width is the sum of
      the input widths and each projection starts as the embedding of its map
      into its own slice of the output, so the untrained neck returns the
      normalised maps concatenated (times equal weights). The cosine of such a
      concatenation is the mean of the per-map cosines (exactly on a single
      grid; after bilinear resizing of coarser maps, approximately), which is
      what a matcher without a neck computes from the same maps: training
      starts *at* zero-shot matching and learns a correction, including the
      weight of each map;
    - an integer ``out_channels``: orthogonal projections (a random subspace,
      which roughly keeps cosine similarities) to a smaller width, cheaper to
      refine but lossy when the inputs are wide.

    Args:
        in_channels: Channels of each input map (injected by the matcher).
        in_strides: Stride of each input map in input pixels (injected by the matcher).
        out_channels: Width of the output map. The default 256 keeps the adapter
            small: about 0.53 M parameters on four 384-channel ViT-S maps.
            ``None``: the sum of ``in_channels``, with the concatenation start.
        num_blocks: Residual blocks after the mix; 0 leaves the weighted sum of
            projections.
        hidden_channels: Width inside each block; ``None`` means
            ``out_channels // 4`` (a ResNet bottleneck).
        norm_groups: GroupNorm groups inside the blocks; must divide the hidden width.
        upsample: Integer factor of the final bilinear upsampling (1: none); it
            must divide the finest input stride.
        normalize_inputs: L2-normalise every input map along its channels first.

    Raises:
        ValueError: On bad ``in_channels`` / ``in_strides``, a width below 1,
            ``norm_groups`` that does not divide the hidden width, a bad
            ``upsample``, or another number of maps at run time.

    Shape:
        - input: list of ``(N, C_i, h_i, w_i)``, one per ``in_channels`` entry
        - output: one ``(N, out_channels, upsample * h, upsample * w)`` map, with
          ``(h, w)`` the largest input grid, at stride ``min(in_strides) / upsample``
          (``out_channels = sum(in_channels)`` when it is ``None``)

    Examples:
        >>> neck = AggregationNeck(in_channels=[8, 16], in_strides=[8, 16], out_channels=16,
        ...                        num_blocks=1, norm_groups=2, upsample=2)
        >>> neck.out_channels, neck.strides
        ([16], [4])
        >>> [tuple(f.shape) for f in neck([torch.randn(1, 8, 6, 5), torch.randn(1, 16, 3, 3)])]
        [(1, 16, 12, 10)]
        >>> neck.output_sizes([(6, 5), (3, 3)])
        [(12, 10)]

        The concatenation start returns the normalised maps side by side:

        >>> neck = AggregationNeck(in_channels=[2, 3], in_strides=[8, 8], out_channels=None,
        ...                        num_blocks=1, norm_groups=1)
        >>> a, b = torch.randn(1, 2, 4, 4), torch.randn(1, 3, 4, 4)
        >>> want = torch.cat([F.normalize(a, dim=1), F.normalize(b, dim=1)], 1) / 2 * 5 ** 0.5
        >>> torch.allclose(neck([a, b])[0], want, atol=1e-6)
        True
    """

    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int],
                 out_channels: int | None = 256, num_blocks: int = 2,
                 hidden_channels: int | None = None, norm_groups: int = 8, upsample: int = 1,
                 normalize_inputs: bool = True):
        super().__init__()
        name = type(self).__name__
        self.in_channels, self.in_strides = checked_inputs(name, in_channels, in_strides)
        concatenate = out_channels is None
        if concatenate:
            out_channels = sum(self.in_channels)
        hidden = out_channels // 4 if hidden_channels is None else hidden_channels
        if out_channels < 1 or hidden < 1 or num_blocks < 0:
            raise ValueError(f'{name} needs out_channels >= 1, hidden_channels >= 1 and '
                             f'num_blocks >= 0, got {out_channels}, {hidden} and {num_blocks}')
        if num_blocks and (norm_groups < 1 or hidden % norm_groups):
            raise ValueError(f'{name}.norm_groups={norm_groups} must divide the blocks\' hidden '
                             f'width {hidden} (hidden_channels, default out_channels // 4)')
        self.upsample = upsampling_factor(name, upsample, [min(self.in_strides)])
        self.projections = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in self.in_channels)
        offset = 0
        for proj, c in zip(self.projections, self.in_channels):
            weight = proj.weight.view(out_channels, c)
            if concatenate:  # map j into channels offset .. offset + c_j, zero elsewhere
                with torch.no_grad():
                    weight.zero_()
                    weight[offset:offset + c] = torch.eye(c)
            else:
                nn.init.orthogonal_(weight)
            nn.init.zeros_(proj.bias)
            offset += c
        self.layer_logits = nn.Parameter(torch.zeros(len(self.in_channels)))
        self.blocks = nn.Sequential(*(_BottleneckBlock(out_channels, hidden, norm_groups)
                                      for _ in range(num_blocks)))
        self.normalize_inputs = normalize_inputs
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
        if self.normalize_inputs:  # unit norm, then about unit size per output channel
            scale = self.out_channels[0] ** 0.5
            feats = [F.normalize(f, dim=1, eps=1e-5) * scale for f in feats]
        mixed = sum(w * resize_features(proj(f), size)
                    for w, proj, f in zip(weights, self.projections, feats))
        if self.upsample > 1:
            mixed = resize_features(mixed, (size[0] * self.upsample, size[1] * self.upsample))
        return [self.blocks(mixed)]
