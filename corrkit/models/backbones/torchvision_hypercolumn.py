"""Hypercolumn features from named nodes of a torchvision model."""
from __future__ import annotations

import os
from typing import Any, ClassVar, Mapping, Sequence

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from ...registry import BACKBONES
from ..base import Backbone
from .folding import BatchNormFoldingMixin
from .freezing import FreezeMixin

#: Input side used once at construction to measure channels and strides.
_PROBE_SIZE = 256


@BACKBONES.register_module()
class TorchvisionHypercolumnBackbone(BatchNormFoldingMixin, FreezeMixin, Backbone):
    """Taps named graph nodes of a torchvision classification model.

    Uses torchvision's feature extraction (``create_feature_extractor``), so any
    node that ``get_graph_node_names`` lists can be tapped. Channels and strides
    are measured once at construction.

    Args:
        model_name: A name known to ``torchvision.models.get_model``, e.g.
            ``'mobilenet_v2'``.
        taps: Graph nodes to tap, shallow to deep, e.g.
            ``['features.7', 'features.8']`` (torchvision's ``return_nodes``).
        pretrained: ``False`` (random init, whatever ``weights`` says), ``True``
            (the weights ``weights`` names, by default the model's ``DEFAULT`` ones,
            loaded through torch hub's cache ``$TORCH_HOME/hub/checkpoints``) or the
            path of a local state dict. ``None`` (unset) follows ``weights``.
        weights: torchvision's own key, kept as an alias: a weights enum name of
            that model such as ``'IMAGENET1K_V1'`` (or a local state-dict path).
            It chooses which weights ``pretrained=True`` loads, and alone it
            implies ``pretrained``.
        freeze: Use the backbone as a fixed feature extractor: no gradients, and it
            stays in eval mode (BatchNorm statistics unchanged) when the model trains.
        norm_eval: Keep BatchNorm layers in eval mode while training.

    Shape:
        - input: ``(N, 3, H, W)``
        - output: list of ``(N, C_i, ceil(H / s_i), ceil(W / s_i))``

    A module name (``'features.7'``) taps the last operation inside that module.

    Raises:
        ValueError: On unknown nodes, an unknown weights name, or ``weights``
            together with a ``pretrained`` path.
        FileNotFoundError: If ``pretrained`` is a path that does not exist.
        RuntimeError: If named weights are not cached and cannot be downloaded;
            the message gives the exact file path to put them at.
        UnknownArgumentError: When built from a config that still says
            ``return_nodes`` (renamed to ``taps``).

    Examples:
        >>> net = TorchvisionHypercolumnBackbone('mobilenet_v2', ['features.7', 'features.14'])
        >>> net.out_channels, net.strides
        ([64, 160], [16, 32])
        >>> net.feature_info[1]
        {'num_chs': 160, 'reduction': 32, 'module': 'features.14'}
    """

    renamed_keys: ClassVar[Mapping[str, str]] = {'return_nodes': 'taps'}

    def __init__(self, model_name: str = 'mobilenet_v2',
                 taps: Sequence[str] = ('features.7', 'features.14'),
                 pretrained: bool | str | None = None, weights: str | None = None,
                 freeze: bool = False, norm_eval: bool = False):
        super().__init__()
        model = build_torchvision_model(model_name, pretrained, weights)
        nodes = list(taps)
        _, known = get_graph_node_names(model)
        unknown = [n for n in nodes if not any(k == n or k.startswith(n + '.') for k in known)]
        if unknown or not nodes:
            raise ValueError(f'taps {unknown or nodes} are not nodes of torchvision model '
                             f"'{model_name}'; known nodes include {known[:8]} ... {known[-4:]}")
        self.taps = nodes
        self.extractor = create_feature_extractor(model, return_nodes={n: n for n in nodes})
        self.out_channels, self.strides = self._measure()
        self.setup_freezing(freeze, norm_eval)

    @classmethod
    def local_weights_options(cls, cfg: Mapping[str, Any], path: str) -> dict[str, Any]:
        """A local state dict replaces the named ``weights`` (the two cannot be combined)."""
        return {'pretrained': path, 'weights': None}

    def feature_modules(self) -> list[str]:
        """The tapped graph nodes, e.g. ``'features.7'``."""
        return list(self.taps)

    @torch.no_grad()
    def _measure(self) -> tuple[list[int], list[int]]:
        was_training = self.extractor.training
        self.extractor.eval()
        param = next(self.extractor.parameters())
        probe = torch.zeros(1, 3, _PROBE_SIZE, _PROBE_SIZE, dtype=param.dtype, device=param.device)
        feats = list(self.extractor(probe).values())
        self.extractor.train(was_training)
        return ([f.shape[1] for f in feats], [round(_PROBE_SIZE / f.shape[-1]) for f in feats])

    def forward(self, images: Tensor) -> list[Tensor]:
        """Return the tapped nodes in ``taps`` order.

        Once :meth:`fold_batchnorm` was called, at inference (eval mode, no
        gradient to the weights) the network runs with its BatchNorms folded into
        the convolutions (:mod:`.folding`).
        """
        return self.batchnorm_folding(images)

    def folding_target(self) -> tuple[nn.Module, Any]:
        """The feature extractor, run for the taps."""
        return self.extractor, self._tapped

    def bare_network(self) -> nn.Module:
        """The feature extractor: the network up to the deepest tap, BatchNorm unfolded."""
        return self.extractor

    def _tapped(self, extractor: nn.Module, images: Tensor) -> list[Tensor]:
        out = extractor(images)
        return [out[n] for n in self.taps]


def build_torchvision_model(model_name: str, pretrained: bool | str | os.PathLike | None = None,
                            weights: str | None = None) -> nn.Module:
    """``torchvision.models.get_model`` with local files and an actionable offline error.

    Args:
        model_name: torchvision model name.
        pretrained: ``False`` (random, whatever ``weights`` says), ``True`` (the
            weights ``weights`` names, else ``DEFAULT``), a local state-dict path,
            or ``None`` (follow ``weights``).
        weights: A weights enum name, or a local state-dict path.

    Returns:
        The model with the requested weights.

    Raises:
        FileNotFoundError: If the local state dict does not exist.
        ValueError: If the weights name is unknown, or ``weights`` comes with a
            ``pretrained`` path.
        RuntimeError: If named weights are neither cached nor downloadable.
    """
    if pretrained is False:
        return torchvision.models.get_model(model_name, weights=None)
    if pretrained is not None and pretrained is not True:
        if weights:
            raise ValueError(f"torchvision model '{model_name}' got both pretrained="
                             f'{pretrained!r} and weights={weights!r}; set one of them')
        return _load_state_dict(model_name, os.fspath(pretrained))
    if weights and (os.sep in weights or weights.endswith(('.pth', '.pt', '.bin'))):
        return _load_state_dict(model_name, weights)
    name = weights or ('DEFAULT' if pretrained else None)
    if name is None:
        return torchvision.models.get_model(model_name, weights=None)
    enum = torchvision.models.get_model_weights(model_name)
    try:
        spec = enum[name] if name != 'DEFAULT' else enum.DEFAULT
    except KeyError:
        raise ValueError(f"torchvision model '{model_name}' has no weights '{name}'; "
                         f'choose one of {[w.name for w in enum]} or DEFAULT') from None
    target = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(spec.url))
    try:
        return torchvision.models.get_model(model_name, weights=spec)
    except (OSError, RuntimeError, ConnectionError) as err:
        raise RuntimeError(
            f"could not load weights {spec} for torchvision model '{model_name}' "
            f'({type(err).__name__}: {err}). Put the file {os.path.basename(spec.url)} at '
            f'{target} (the torch hub cache; set TORCH_HOME to move it), or set '
            f'model.backbone.pretrained to the path of a local state dict') from err


def _load_state_dict(model_name: str, path: str) -> nn.Module:
    """The model with the weights of a local state-dict file (read without running code)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file '{path}' for torchvision model "
                                f"'{model_name}' does not exist")
    model = torchvision.models.get_model(model_name, weights=None)
    model.load_state_dict(torch.load(path, map_location='cpu', weights_only=True))
    return model
