"""Building any config's backbone without fetching weights, or from a local weights file."""
from __future__ import annotations

from typing import Any

from mmengine.config import Config

from ...registry import BACKBONES
from ..base import Backbone

__all__ = ['local_weights_options', 'random_weights_options']


def random_weights_options(cfg: Config) -> dict[str, Any]:
    """``cfg_options`` that build a config's backbone with random weights (nothing fetched).

    For measurements whose outcome does not depend on the weights (speed,
    memory, shapes), and for building any config offline. Each backbone says
    which of its keys to set (``Backbone.random_weights_options``); its class is
    looked up in the ``BACKBONES`` registry by the config's ``type``.

    Args:
        cfg: A config with ``model.backbone``.

    Returns:
        Dotted keys under ``model.backbone`` and their values; empty when the
        config has no backbone or names a type that is not a registered
        :class:`~corrkit.models.base.Backbone` (the build then reports it).

    Examples:
        >>> random_weights_options(Config(dict(model=dict(backbone=dict(
        ...     type='TimmHypercolumnBackbone', pretrained=True)))))
        {'model.backbone.pretrained': False}
    """
    backbone, cls = _backbone_class(cfg)
    if cls is None:
        return {}  # unknown or not a Backbone: building it reports that
    return {f'model.backbone.{key}': value
            for key, value in cls.random_weights_options(backbone).items()}


def local_weights_options(cfg: Config, path: str) -> dict[str, Any]:
    """``cfg_options`` that load a config's backbone weights from a local file.

    Each backbone says which of its keys to set (``Backbone.local_weights_options``).

    Args:
        cfg: A config with ``model.backbone``.
        path: The weights file.

    Returns:
        Dotted keys under ``model.backbone`` and their values.

    Raises:
        ValueError: If the config has no registered backbone to load into.

    Examples:
        >>> local_weights_options(Config(dict(model=dict(backbone=dict(
        ...     type='TorchvisionHypercolumnBackbone', weights='IMAGENET1K_V1')))), 'w.pth')
        {'model.backbone.pretrained': 'w.pth', 'model.backbone.weights': None}
    """
    backbone, cls = _backbone_class(cfg)
    if cls is None:
        raise ValueError(f"config '{cfg.filename}' has no registered backbone "
                         f'(model.backbone) to load {path} into')
    return {f'model.backbone.{key}': value
            for key, value in cls.local_weights_options(backbone, path).items()}


def _backbone_class(cfg: Config) -> tuple[dict | None, type[Backbone] | None]:
    backbone = cfg.get('model', {}).get('backbone')
    if not isinstance(backbone, dict):
        return None, None
    cls = backbone.get('type')
    if isinstance(cls, str):
        cls = BACKBONES.get(cls)
    return backbone, cls if isinstance(cls, type) and issubclass(cls, Backbone) else None
