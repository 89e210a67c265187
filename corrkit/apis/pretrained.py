"""``checkpoint='auto'``: a named model's published weights as backbone options and a checkpoint.

The hub fetches and checks the files (:func:`corrkit.hub.published.published_files`);
this module only turns them into a build: the options come from the backbone class
(``Backbone.random_weights_options`` / ``local_weights_options``), which the hub,
below the models, cannot import.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mmengine.config import Config

from ..hub.published import published_files
from ..models.backbones import local_weights_options, random_weights_options

__all__ = ['pretrained_weights']


def pretrained_weights(config: Any, cfg: Config, progress: bool = True
                       ) -> tuple[dict[str, Any], Path | None]:
    """What ``init_matcher(name, checkpoint='auto')`` loads: the index's files, fetched and checked.

    A model with published weights is built with a random backbone and gets
    every weight from its checkpoint. A zero-shot model's backbone is built from
    its checked file. See :func:`~corrkit.hub.published.published_files`.

    Args:
        config: What the caller passed as the config; must be a model name.
        cfg: Its loaded config (the backbone's options depend on its type).
        progress: Print download progress.

    Returns:
        ``cfg_options`` for the backbone, and the trained weights' path (None for a
        zero-shot model, whose backbone is all it has); loaded strictly, the
        checkpoint must hold every parameter and buffer.

    Raises:
        WeightsError: As :func:`~corrkit.hub.published.published_files`: nothing
            published for a model that needs trained weights, or a file that cannot be
            fetched or checked (``ValueError`` / ``KeyError`` where ``config`` is not a
            known model name).
    """
    files = published_files(config, progress)
    if files.checkpoint is not None:  # it holds every weight, the backbone's too
        return random_weights_options(cfg), files.checkpoint
    if files.backbone is None:
        return {}, None
    return local_weights_options(cfg, os.fspath(files.backbone)), None
