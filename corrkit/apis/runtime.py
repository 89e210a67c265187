"""What training and evaluation share when they set up mmengine's Runner."""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Callable

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from ..registry import check_config
from ..config import load_config

LAUNCHERS = ('none', 'pytorch', 'slurm')

#: Per Runner mode: the config entries it needs, what it is called in messages,
#: and where such entries usually come from.
MODES = {
    'train': (('model', 'train_dataloader', 'train_cfg', 'optim_wrapper'), 'train',
              'include a dataset base and a schedule base such as '
              'configs/_base_/schedules/adam_10e.py'),
    'test': (('model', 'test_dataloader', 'test_evaluator', 'test_cfg'), 'be evaluated',
             'include a dataset base such as configs/_base_/datasets/spair.py'),
}


def setup_runner(config: str | os.PathLike | Config | dict, mode: str,
                 work_dir: str | None = None, cfg_options: dict[str, Any] | None = None,
                 launcher: str = 'none',
                 adjust: Callable[[Config], None] | None = None) -> Runner:
    """An mmengine ``Runner`` for ``mode`` of a config, set up alike for training and testing.

    In order: load the config with its overrides, check its types and keys
    (with suggestions, before the Runner builds anything), require the
    entries of ``mode``, set the work directory, the launcher, the default
    scope and a fresh experiment name, call ``adjust(cfg)`` for what only
    this mode sets, add the :data:`REQUIRED_HOOKS`, and build the Runner.

    Args:
        config: Config path, ``Config`` or dict.
        mode: A key of :data:`MODES` (``'train'`` or ``'test'``).
        work_dir: Checkpoints, logs and reports; default ``work_dirs/<config name>``
            (or the config's own ``work_dir``).
        cfg_options: Dotted-key overrides.
        launcher: One of :data:`LAUNCHERS`.
        adjust: Changes the config once the common settings are in.

    Returns:
        The runner.

    Raises:
        KeyError: If the config lacks an entry ``mode`` needs (the message
            names the config, the entries and where they usually come from).
        ValueError: If ``launcher`` is unknown.
    """
    required, doing, hint = MODES[mode]
    cfg = load_config(config, cfg_options)
    check_config(cfg)
    missing = [k for k in required if cfg.get(k) is None]
    if missing:
        raise KeyError(f"config '{cfg.filename}' cannot {doing}: it has no {missing}; {hint}")
    cfg.work_dir = work_dir or cfg.get('work_dir') or default_work_dir(config)
    set_launcher(cfg, launcher)
    cfg.setdefault('default_scope', 'corrkit')
    cfg.experiment_name = unique_experiment_name(cfg.work_dir, mode)
    if adjust is not None:
        adjust(cfg)
    ensure_hooks(cfg)
    return Runner.from_cfg(cfg)


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


def set_launcher(cfg: Config, launcher: str) -> None:
    """Set ``cfg.launcher``; on machines without GPUs, prepare DDP over gloo.

    Raises:
        ValueError: If ``launcher`` is not one of :data:`LAUNCHERS`.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f'unknown launcher {launcher!r}; expected one of {LAUNCHERS}')
    cfg.launcher = launcher
    if launcher == 'pytorch' and not torch.cuda.is_available():
        _init_cpu_process_group()
        # mmengine hands DDP the local rank as a CUDA device id; CPU modules take none.
        # A wrapper config takes mmengine's other branch: restate its defaults.
        wrapper = dict(type='MMDistributedDataParallel', broadcast_buffers=False,
                       find_unused_parameters=cfg.get('find_unused_parameters', False))
        cfg.model_wrapper_cfg = {**wrapper, **(cfg.get('model_wrapper_cfg') or {}),
                                 'device_ids': None}


def _init_cpu_process_group() -> None:
    """Join torchrun's process group over gloo when there is no GPU.

    mmengine's own ``init_dist`` selects a CUDA device per rank, which fails on
    CPU-only machines; the Runner skips it when a group already exists.
    """
    import torch.distributed as dist
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
