"""Evaluating a matcher on a config's test split with mmengine's Runner."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from mmengine.config import Config
from mmengine.runner import Runner

from ..utils.config import load_config
from .inference import load_weights


TRAIN_AND_VAL_KEYS = ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler',
                      'val_dataloader', 'val_cfg', 'val_evaluator')


def default_work_dir(config: str | os.PathLike | Config | dict) -> str:
    """``work_dirs/<config name>``, the work directory a config gets when none is given."""
    name = Path(config.filename).stem if isinstance(config, Config) and config.filename \
        else Path(os.fspath(config)).stem if isinstance(config, (str, os.PathLike)) else 'run'
    return str(Path('work_dirs') / name)


#: Hooks every corrkit run needs, added to ``custom_hooks`` when a config lacks them.
REQUIRED_HOOKS = ('PCKReportHook', 'SafeCheckpointHook', 'EpochSeedHook')


def unique_experiment_name(work_dir: str, mode: str) -> str:
    """A fresh experiment name for a Runner.

    mmengine keys its logger, visualiser and message hub by experiment name,
    which defaults to the second the run started: two runs started in the same
    second in one process would share them.
    """
    return f'{Path(work_dir).name}_{mode}_{uuid.uuid4().hex[:8]}'


def ensure_hooks(cfg: Config) -> None:
    """Add the :data:`REQUIRED_HOOKS` missing from ``cfg.custom_hooks``."""
    hooks = list(cfg.get('custom_hooks') or [])
    present = {h.get('type') for h in hooks}
    cfg.custom_hooks = hooks + [dict(type=t) for t in REQUIRED_HOOKS if t not in present]


def evaluate(config: str | os.PathLike | Config | dict, checkpoint: str | None = None,
             work_dir: str | None = None,
             cfg_options: dict[str, Any] | None = None) -> dict[str, float]:
    """Run a config's test split and return its metrics.

    The evaluators print their tables; PCK reports land in ``work_dir`` as
    ``pck_<threshold>.json``.

    Args:
        config: Config path, ``Config`` or dict with ``model``, ``test_dataloader``,
            ``test_evaluator`` and ``test_cfg``.
        checkpoint: Weights to evaluate (loaded with ``weights_only=True``);
            ``None`` evaluates the model as built (e.g. a zero-shot baseline).
        work_dir: Where logs and reports go; default ``work_dirs/<config name>``.
        cfg_options: Dotted-key overrides.

    Returns:
        The metrics, e.g. ``{'PCK@0.05': ..., 'PCK@0.1': ..., 'PCK@0.15': ...}``.

    Raises:
        KeyError: If the config lacks one of the test entries.
    """
    cfg = load_config(config, cfg_options)
    missing = [k for k in ('model', 'test_dataloader', 'test_evaluator', 'test_cfg')
               if cfg.get(k) is None]
    if missing:
        raise KeyError(f"config '{cfg.filename}' cannot be evaluated: it has no {missing}; "
                       f"include a dataset base such as configs/_base_/datasets/spair.py")
    cfg.work_dir = work_dir or cfg.get('work_dir') or default_work_dir(config)
    cfg.load_from = None
    # Testing needs none of the training or validation set-up (which mmengine
    # wants complete or absent); dropping it also avoids reading those splits.
    for key in TRAIN_AND_VAL_KEYS:
        cfg[key] = None
    cfg.setdefault('default_scope', 'corrkit')
    cfg.experiment_name = unique_experiment_name(cfg.work_dir, 'test')
    ensure_hooks(cfg)
    runner = Runner.from_cfg(cfg)
    if checkpoint is not None:
        load_weights(runner.model, checkpoint)
    return runner.test()
