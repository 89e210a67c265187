"""Hypercolumn features from chosen blocks of a timm vision transformer (DINOv2 family)."""
from __future__ import annotations

from typing import ClassVar, Mapping, Sequence

from torch import Tensor

from ...registry import BACKBONES
from ..base import Backbone
from .freezing import FreezeMixin
from .timm_hypercolumn import create_timm_model

#: What a timm model must offer to be tapped block by block.
_VIT_ATTRIBUTES = ('patch_embed', 'blocks', 'forward_intermediates', 'prune_intermediate_layers')


@BACKBONES.register_module()
class TimmViTHypercolumnBackbone(FreezeMixin, Backbone):
    """Taps the patch tokens of chosen blocks of a timm vision transformer.

    Meant for foundation features such as DINOv2 (Oquab et al., 2023), which go
    beyond the TransforMatcher paper's ImageNet ResNet-101. Each tapped block gives
    one map of patch tokens at stride ``patch size``; class and register tokens are
    dropped. Blocks after the deepest tapped one and the classifier are removed.

    The model is created with ``dynamic_img_size=True`` (position embeddings are
    resampled to any grid) and ``dynamic_img_pad=True``: an input side that is not a
    multiple of the patch size is zero-padded at the bottom / right, so the grid is
    ``ceil(H / p) x ceil(W / p)`` as ``Backbone.feature_sizes`` expects.

    Args:
        model_name: A timm vision transformer, optionally with a pretrained tag, e.g.
            ``'vit_small_patch14_dinov2.lvd142m'`` or
            ``'vit_base_patch14_reg4_dinov2.lvd142m'``.
        taps: Transformer blocks to tap, 0-based (the indices of timm's
            ``feature_info`` and ``forward_intermediates``); negative indices count
            from the end. The default ``(-4, -3, -2, -1)`` taps the last four blocks.
            Maps come shallow to deep whatever the order given; a repeated block is
            tapped once.
        pretrained: ``False`` (random init), ``True`` (timm / Hugging Face hub) or
            the path of a local checkpoint file (``.pth``, ``.bin``, ``.safetensors``).
        norm: Apply the model's final LayerNorm to every tapped map (as DINOv2's
            ``get_intermediate_layers`` does by default). With ``False`` the final
            norm is removed from the model, so no parameter goes unused.
        freeze: Use the backbone as a fixed feature extractor: no gradients, and it
            stays in eval mode (no dropout) when the model trains.
        norm_eval: Keep BatchNorm layers in eval mode while training. Accepted for a
            uniform backbone interface; vision transformers use LayerNorm, which has
            no running statistics, so it has no effect here.

    Shape:
        - input: ``(N, 3, H, W)``
        - output: list of ``(N, C, ceil(H / p), ceil(W / p))``, one per tapped block,
          with ``C`` the embedding width and ``p`` the patch size

    Raises:
        ValueError: On a model that is not a timm vision transformer (no patch
            embedding or ``forward_intermediates``), on non-square patches, or on
            block indices outside ``-depth .. depth - 1``.
        UnknownArgumentError: When built from a config that still says ``blocks``
            (renamed to ``taps``).
        FileNotFoundError: If ``pretrained`` is a path that does not exist.
        RuntimeError: If pretrained weights cannot be fetched (for instance offline);
            the message says where to put the weights file.

    Examples:
        >>> net = TimmViTHypercolumnBackbone('test_vit', taps=(1, 3))
        >>> net.out_channels, net.strides, len(net.vit.blocks)
        ([64, 64], [16, 16], 4)
        >>> [tuple(f.shape) for f in net(torch.zeros(1, 3, 70, 53))]
        [(1, 64, 5, 4), (1, 64, 5, 4)]
        >>> [d['module'] for d in net.feature_info]
        ['blocks.1', 'blocks.3']
    """

    renamed_keys: ClassVar[Mapping[str, str]] = {'blocks': 'taps'}

    def __init__(self, model_name: str = 'vit_small_patch14_dinov2',
                 taps: Sequence[int] = (-4, -3, -2, -1), pretrained: bool | str = False,
                 norm: bool = True, freeze: bool = False, norm_eval: bool = False):
        super().__init__()
        requirement = (f'{type(self).__name__} needs a timm vision transformer with a patch '
                       f'embedding and forward_intermediates (e.g. vit_small_patch14_dinov2)')
        try:
            model = create_timm_model(model_name, pretrained, dynamic_img_size=True,
                                      dynamic_img_pad=True)
        except TypeError as err:  # the constructor of a non-ViT refuses the dynamic_img_* args
            if 'dynamic_img' not in str(err):
                raise
            raise ValueError(f"timm model '{model_name}' is not a vision transformer; "
                             f'{requirement}') from err
        missing = [a for a in _VIT_ATTRIBUTES if not hasattr(model, a)]
        if missing:
            raise ValueError(f"timm model '{model_name}' has no {', '.join(missing)}; "
                             f'{requirement}')
        patch = tuple(model.patch_embed.patch_size)
        if patch[0] != patch[1]:
            raise ValueError(f"timm model '{model_name}' has non-square {patch} patches; "
                             f'{type(self).__name__} needs square ones')
        self.taps = _absolute_blocks(taps, len(model.blocks))
        channels = [model.feature_info[i]['num_chs'] for i in self.taps]
        model.prune_intermediate_layers(list(self.taps), prune_norm=not norm, prune_head=True)
        self.vit = model
        self.norm = norm
        self.out_channels = channels
        self.strides = [patch[0]] * len(self.taps)
        self.setup_freezing(freeze, norm_eval)

    def feature_modules(self) -> list[str]:
        """The timm module of every tapped block, e.g. ``'blocks.11'``."""
        return [f'blocks.{i}' for i in self.taps]

    def forward(self, images: Tensor) -> list[Tensor]:
        """Return the patch-token map of every tapped block, shallow to deep."""
        return self.vit.forward_intermediates(images, indices=list(self.taps),
                                              norm=self.norm, output_fmt='NCHW',
                                              intermediates_only=True)


def _absolute_blocks(blocks: Sequence[int], depth: int) -> tuple[int, ...]:
    """Sorted, unique, non-negative block indices; ValueError naming the valid range."""
    blocks = [int(b) for b in blocks]
    bad = [b for b in blocks if not -depth <= b < depth]
    if bad or not blocks:
        raise ValueError(f'taps must be a non-empty sequence of block indices in '
                         f'{-depth}..{depth - 1} (the model has {depth} blocks), got '
                         f'{list(blocks)}')
    return tuple(sorted({b % depth for b in blocks}))
