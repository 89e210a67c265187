"""Hypercolumn features from every block of chosen stages of a timm ResNet-family model."""
from __future__ import annotations

import os
from typing import Any, ClassVar, Mapping, Sequence

import timm
from torch import Tensor, nn

from ...registry import BACKBONES
from ..base import Backbone
from .folding import BatchNormFoldingMixin
from .freezing import FreezeMixin


@BACKBONES.register_module()
class TimmHypercolumnBackbone(BatchNormFoldingMixin, FreezeMixin, Backbone):
    """Taps the output of every block of the chosen stages of a timm ResNet.

    With ``resnet101`` and ``taps=(3, 4)`` (conv4_x and conv5_x) this gives
    23 maps of 1024 channels at stride 16 and 3 maps of 2048 channels at stride
    32: the 26 hypercolumn layers of TransforMatcher. Stages after the last
    chosen one and the classifier are dropped.

    Args:
        model_name: A timm ResNet-family model (``resnet*``, ``resnext*``,
            ``seresnet*``, ``test_resnet``...), optionally with a pretrained tag
            such as ``'resnet101.tv_in1k'`` (torchvision's ImageNet weights).
        taps: Residual stages to tap, 1-based (``layer1`` … ``layer4``): the
            indices of timm's ``feature_info`` for these models, as its
            ``out_indices`` counts them. Every block of a tapped stage gives a map.
        pretrained: ``False`` (random init), ``True`` (timm / Hugging Face hub) or
            the path of a local checkpoint file (``.pth``, ``.bin``, ``.safetensors``).
        freeze: Use the backbone as a fixed feature extractor: no gradients, and it
            stays in eval mode (BatchNorm statistics unchanged) when the model trains.
        norm_eval: Keep BatchNorm layers in eval mode (running statistics frozen)
            even when the model trains.

    Shape:
        - input: ``(N, 3, H, W)``
        - output: list of ``(N, C_i, ceil(H / s_i), ceil(W / s_i))``

    Raises:
        ValueError: On a model without ResNet stages or an invalid stage.
        UnknownArgumentError: When built from a config that still says ``stages``
            (renamed to ``taps``).
        FileNotFoundError: If ``pretrained`` is a path that does not exist.
        RuntimeError: If pretrained weights cannot be fetched (for instance offline);
            the message says where to put the weights file.

    Examples:
        >>> net = TimmHypercolumnBackbone('test_resnet', taps=(3, 4))
        >>> [tuple(f.shape) for f in net(torch.zeros(1, 3, 64, 64))]
        [(1, 192, 4, 4), (1, 96, 2, 2)]
        >>> net.feature_info[0]
        {'num_chs': 192, 'reduction': 16, 'module': 'layer3.0'}
    """

    renamed_keys: ClassVar[Mapping[str, str]] = {'stages': 'taps'}

    def __init__(self, model_name: str = 'resnet101', taps: Sequence[int] = (3, 4),
                 pretrained: bool | str = False, freeze: bool = False, norm_eval: bool = False):
        super().__init__()
        model = create_timm_model(model_name, pretrained)
        if not all(hasattr(model, f'layer{i}') for i in range(1, 5)):
            raise ValueError(f"timm model '{model_name}' has no ResNet stages layer1..layer4; "
                             f'TimmHypercolumnBackbone needs a ResNet-family model')
        stages = sorted(set(int(s) for s in taps))
        if not stages or stages[0] < 1 or stages[-1] > 4:
            raise ValueError(f'taps must be a non-empty subset of the stages 1..4, got '
                             f'{list(taps)}')
        info = {d['module']: d for d in model.feature_info}
        self.stem = nn.Sequential(model.conv1, model.bn1, model.act1, model.maxpool)
        self.stages = nn.ModuleList(getattr(model, f'layer{i}') for i in range(1, stages[-1] + 1))
        self.taps = tuple(stages)
        self.out_channels = []
        self.strides = []
        self.modules_tapped: list[str] = []
        for i in stages:
            n_blocks = len(getattr(model, f'layer{i}'))
            self.out_channels += [info[f'layer{i}']['num_chs']] * n_blocks
            self.strides += [info[f'layer{i}']['reduction']] * n_blocks
            self.modules_tapped += [f'layer{i}.{j}' for j in range(n_blocks)]
        self.setup_freezing(freeze, norm_eval)

    def feature_modules(self) -> list[str]:
        """The timm module of every tapped block, e.g. ``'layer3.0'``."""
        return list(self.modules_tapped)

    def forward(self, images: Tensor) -> list[Tensor]:
        """Return the output of every block of the tapped stages, shallow to deep.

        Once :meth:`fold_batchnorm` was called, at inference (eval mode, no gradient
        to the weights) the blocks run with their BatchNorms folded into the
        convolutions (:mod:`.folding`).
        """
        return self.batchnorm_folding(images)

    def folding_target(self) -> tuple[nn.Module, Any]:
        """The stem and the stages, run with the taps kept."""
        return nn.ModuleList([self.stem, self.stages]), self._tapped

    def bare_network(self) -> nn.Module:
        """The stem and the stages as one plain network: the same convolutions, no taps
        kept, BatchNorm unfolded (the benchmark's speed reference)."""
        return nn.Sequential(self.stem, *self.stages)

    def _tapped(self, network: nn.ModuleList, images: Tensor) -> list[Tensor]:
        stem, stages = network
        x = stem(images)
        feats = []
        for index, stage in enumerate(stages, start=1):
            for block in stage:
                x = block(x)
                if index in self.taps:
                    feats.append(x)
        return feats


def create_timm_model(model_name: str, pretrained: bool | str,
                      **model_kwargs: Any) -> nn.Module:
    """``timm.create_model`` with local-file weights and an actionable offline error.

    Args:
        model_name: timm model name, optionally with a pretrained tag.
        pretrained: ``False``, ``True`` (hub) or a local checkpoint path.
        **model_kwargs: Passed on to the model's constructor (e.g.
            ``dynamic_img_size=True`` for a vision transformer).

    Returns:
        The timm model.

    Raises:
        FileNotFoundError: If ``pretrained`` is a missing path.
        RuntimeError: If the hub cannot be reached.
    """
    if isinstance(pretrained, (str, os.PathLike)):
        path = os.fspath(pretrained)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"pretrained checkpoint '{path}' for timm model "
                                    f"'{model_name}' does not exist")
        return timm.create_model(model_name, pretrained=True,
                                 pretrained_cfg_overlay=dict(file=path), **model_kwargs)
    if not pretrained:
        return timm.create_model(model_name, pretrained=False, **model_kwargs)
    try:
        return timm.create_model(model_name, pretrained=True, **model_kwargs)
    except (OSError, RuntimeError, ConnectionError) as err:
        raise RuntimeError(
            f"could not load pretrained weights for timm model '{model_name}' "
            f'({type(err).__name__}: {err}). Without network access, download '
            f'{_weight_sources(model_name)} on a machine that has it, copy the file here and set '
            f"model.backbone.pretrained to its path (e.g. --cfg-options "
            f"model.backbone.pretrained=/path/to/file), or copy a filled Hugging Face cache to "
            f'HF_HOME (default ~/.cache/huggingface); pretrained=False builds the model with '
            f'random weights') from err


def _weight_sources(model_name: str) -> str:
    """Where timm would fetch the weights of ``model_name`` from, for error messages."""
    cfg = timm.models.get_pretrained_cfg(model_name)
    if cfg is None:
        return 'the weights'
    sources = []
    if cfg.hf_hub_id:
        sources.append(f'https://huggingface.co/{cfg.hf_hub_id} '
                       f'({cfg.hf_hub_filename or "model.safetensors"})')
    if cfg.url:
        sources.append(cfg.url)
    return ' or '.join(sources) or 'the weights'
