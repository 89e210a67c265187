"""What training and evaluation share when they set up mmengine's Runner."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import torch
from mmengine.config import Config

LAUNCHERS = ('none', 'pytorch', 'slurm')


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
