"""Evaluating a matcher on a config's test split with mmengine's Runner."""
from __future__ import annotations

import os
from typing import Any

from mmengine.config import Config
from mmengine.model import is_model_wrapper

from ..config import load_config
from .inference import load_weights
from .pretrained import pretrained_weights
from .runtime import setup_runner

#: What a test run drops from a config (mmengine wants it complete or absent).
TRAIN_AND_VAL_KEYS = ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler',
                      'val_dataloader', 'val_cfg', 'val_evaluator')


def evaluate(config: str | os.PathLike | Config | dict, checkpoint: str | None = None,
             work_dir: str | None = None, cfg_options: dict[str, Any] | None = None,
             launcher: str = 'none') -> dict[str, float]:
    """Run a config's test split and return its metrics.

    The evaluators print their tables; PCK reports land in ``work_dir`` as
    ``pck_<threshold>.json``.

    Args:
        config: Config path, ``Config`` or dict with ``model``, ``test_dataloader``,
            ``test_evaluator`` and ``test_cfg``.
        checkpoint: Weights to evaluate (loaded with ``weights_only=True``), or a
            training work directory (its newest checkpoint, as named in its
            ``last_checkpoint`` file); ``None`` evaluates the model as built
            (e.g. a zero-shot baseline); ``'auto'`` (model names only) the model
            index's published weights, as in :func:`~corrkit.apis.init_matcher`.
        work_dir: Where logs and reports go; default ``work_dirs/<config name>``.
        cfg_options: Dotted-key overrides.
        launcher: ``none``, ``pytorch`` (``torchrun``) or ``slurm``; results of
            all processes are gathered before the metrics are computed.

    Returns:
        The metrics, e.g. ``{'PCK@0.05': ..., 'PCK@0.1': ..., 'PCK@0.15': ...}``.

    Raises:
        KeyError: If the config lacks one of the test entries.
        WeightsError: With ``checkpoint='auto'``, as in :func:`~corrkit.apis.init_matcher`.
    """
    if checkpoint == 'auto':
        options, checkpoint = pretrained_weights(config, load_config(config, cfg_options))
        cfg_options = {**(cfg_options or {}), **options}
    runner = setup_runner(config, 'test', work_dir, cfg_options, launcher, _test_only)
    if checkpoint is not None:  # into the model itself, not a distributed wrapper around it
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        load_weights(model, checkpoint)
    return runner.test()


def _test_only(cfg: Config) -> None:
    # Testing needs none of the training or validation set-up; dropping it also
    # avoids reading those splits. Weights come from ``checkpoint`` alone.
    cfg.load_from = None
    for key in TRAIN_AND_VAL_KEYS:
        cfg[key] = None
