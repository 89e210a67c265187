"""``checkpoint='auto'``: a named model's published weights, fetched and checked, never random."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmengine.config import Config

from ..errors import WeightsError
from ..models.backbones import local_weights_options, random_weights_options
from ..utils.model_index import ModelInfo, model_info
from ..utils.model_names import is_model_name
from ..utils.weights_cache import fetch_weights, weights_status

__all__ = ['pretrained_weights']


def pretrained_weights(config: Any, cfg: Config, progress: bool = True
                       ) -> tuple[dict[str, Any], Path | None]:
    """What ``init_matcher(name, checkpoint='auto')`` loads: the index's files, fetched and checked.

    A model with published weights is built with a random backbone and gets
    every weight from its checkpoint, fetched into its cache and checked (the
    backbone's own file is not needed). A zero-shot model's backbone file is
    fetched and checked the same way and the backbone is built from it. A model
    that needs trained weights (it has parameters outside its backbone) and has
    none published is an error: it is not built with a random refiner or head.

    Args:
        config: What the caller passed as the config; must be a model name.
        cfg: Its loaded config (the backbone's options depend on its type).
        progress: Print download progress.

    Returns:
        ``cfg_options`` for the backbone, and the trained weights' path (None for a
        zero-shot model, whose backbone is all it has); loaded strictly, the
        checkpoint must hold every parameter and buffer.

    Raises:
        ValueError: If ``config`` is not a model name.
        KeyError: If the model index has no entry for it.
        WeightsError: If no trained weights are published for a model that needs
            them, or a file cannot be fetched or does not match its SHA-256; the
            message names the URL, the file and the cache path.
    """
    if not (isinstance(config, str) and is_model_name(config)):
        shown = (os.fspath(config) if isinstance(config, (str, os.PathLike))
                 else getattr(config, 'filename', None) or f'a {type(config).__name__}')
        raise ValueError(f"checkpoint='auto' needs a model name (corrkit.list_models()), not "
                         f"{shown!r}; pass a checkpoint file or a training work directory")
    info = model_info(config)
    if info.weights is None and not info.zero_shot:
        raise WeightsError(_unpublished_message(info))
    if info.weights is not None:  # the checkpoint holds every weight, the backbone's too
        return random_weights_options(cfg), fetch_weights(info.weights, progress)
    options = {}
    if info.backbone_weights is not None:
        path = fetch_weights(info.backbone_weights, progress)
        options = local_weights_options(cfg, os.fspath(path))
    return options, None


def _unpublished_message(info: ModelInfo) -> str:
    backbone = (f'its backbone loads {weights_status(info.backbone_weights)}'
                if info.backbone_weights else 'its backbone starts from random weights')
    return (f"no trained weights are published for '{info.name}' (model index: "
            f"'{info.metafile}'), so checkpoint='auto' has nothing to load, and corrkit does not "
            f'build it with random weights. Train it (corrkit train {info.name}) and pass the '
            f'checkpoint or work directory as checkpoint=...; {backbone}')
