"""``checkpoint='auto'``: the files the model index publishes for a name, fetched and checked.

Which files a named model loads, and fetching them, is the hub's; how a config's
backbone is then built from them is the backbone's own business
(:func:`corrkit.apis.pretrained.pretrained_weights` joins the two).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WeightsError
from .model_index import ModelInfo, model_info
from .model_names import is_model_name
from .weights_cache import fetch_weights, weights_status

__all__ = ['PublishedFiles', 'published_files']


@dataclass(frozen=True)
class PublishedFiles:
    """What ``checkpoint='auto'`` loads for a model, as checked files in their caches.

    Attributes:
        checkpoint: The trained model's weights (its backbone's too), or None for a
            zero-shot model, whose backbone is all it has.
        backbone: The file a zero-shot model's backbone is built from, or None (a
            trained checkpoint holds it, or the backbone starts from random weights).
    """

    checkpoint: Path | None
    backbone: Path | None


def published_files(config: Any, progress: bool = True) -> PublishedFiles:
    """The index's files for a model name, fetched into their caches and checked, never random.

    A model with published weights needs only its checkpoint (the backbone's own
    file is not fetched). A zero-shot model's backbone file is fetched and checked.
    A model that needs trained weights (it has parameters outside its backbone)
    and has none published is an error: it is not built with a random refiner or head.

    Args:
        config: What the caller passed as the config; must be a model name.
        progress: Print download progress.

    Returns:
        The checked files.

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
        return PublishedFiles(fetch_weights(info.weights, progress), None)
    backbone = (None if info.backbone_weights is None
                else fetch_weights(info.backbone_weights, progress))
    return PublishedFiles(None, backbone)


def _unpublished_message(info: ModelInfo) -> str:
    backbone = (f'its backbone loads {weights_status(info.backbone_weights)}'
                if info.backbone_weights else 'its backbone starts from random weights')
    return (f"no trained weights are published for '{info.name}' (model index: "
            f"'{info.metafile}'), so checkpoint='auto' has nothing to load, and corrkit does not "
            f'build it with random weights. Train it (corrkit train {info.name}) and pass the '
            f'checkpoint or work directory as checkpoint=...; {backbone}')
