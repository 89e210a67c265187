"""Training with mmengine's Runner: what ``tools/train.py`` calls."""
from __future__ import annotations

import logging
import os
import shlex
from typing import Any

import torch
from mmengine.config import Config
from mmengine.hooks import CheckpointHook
from mmengine.runner import Runner

from ..engine.atomic_checkpoints import BACKEND as ATOMIC_BACKEND
from ..engine.atomic_checkpoints import newest_readable_checkpoint, remove_stale_temporaries
from ..evaluation.report import dataset_info, describe_measured_on
from ..evaluation.report_hook import configured_dataset
from .runtime import setup_runner

#: ``(logging level, message)`` pairs, logged once the runner's logger exists.
Notes = list[tuple[int, str]]


def build_runner(config: str | os.PathLike | Config | dict, work_dir: str | None = None,
                 cfg_options: dict[str, Any] | None = None, resume: str | None = None,
                 amp: bool = False, launcher: str = 'none') -> Runner:
    """An mmengine ``Runner`` for a training config, ready for ``runner.train()``.

    Set up by :func:`~corrkit.apis.runtime.setup_runner`, plus mixed precision,
    resuming and atomic checkpoint writes.

    Args:
        config: Config path, ``Config`` or dict with model, data and schedule.
        work_dir: Checkpoints, logs and PCK reports; default ``work_dirs/<config name>``.
        cfg_options: Dotted-key overrides.
        resume: ``None`` trains from scratch (or from ``load_from``); ``'auto'``
            resumes from the newest readable checkpoint in ``work_dir`` (see
            :func:`~corrkit.engine.newest_readable_checkpoint`; from the start
            when there is none, with a warning); a path resumes from that
            checkpoint (weights, optimiser, epoch, logs). Resuming from a checkpoint
            of another model raises, listing the keys that differ.
        amp: Mixed precision (mmengine's ``AmpOptimWrapper``; needs a GPU).
        launcher: ``none``, ``pytorch`` (``torchrun``) or ``slurm``.

    Returns:
        The runner.

    Raises:
        KeyError: If the config lacks a training entry.
        ValueError: If ``launcher`` is unknown.
        RuntimeError: If ``amp`` is asked for without a GPU.
    """
    notes: Notes = []  # logged by the runner's logger: on screen and in the work dir's log

    def adjust(cfg: Config) -> None:
        if amp:
            _use_amp(cfg)
        notes.extend(_set_resume(cfg, resume))
        checkpoint_hook = (cfg.get('default_hooks') or {}).get('checkpoint')
        if checkpoint_hook is not None and checkpoint_hook.get('backend_args') is None:
            checkpoint_hook['backend_args'] = dict(backend=ATOMIC_BACKEND)
        if checkpoint_hook is not None and not cfg.get('param_scheduler'):
            # nothing to save: mmengine would warn at every checkpoint that it skips it
            checkpoint_hook.setdefault('save_param_scheduler', False)

    runner = setup_runner(config, 'train', work_dir, cfg_options, launcher, adjust)
    for level, note in notes:
        runner.logger.log(level, note)
    return runner


def _use_amp(cfg: Config) -> None:
    if not torch.cuda.is_available():
        raise RuntimeError('--amp needs a GPU: mmengine mixed precision runs on CUDA devices')
    guarded = cfg.optim_wrapper.get('type') == 'GuardedOptimWrapper'
    cfg.optim_wrapper.type = 'GuardedAmpOptimWrapper' if guarded else 'AmpOptimWrapper'
    cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')


def _set_resume(cfg: Config, resume: str | None) -> Notes:
    """Point ``cfg`` at the checkpoint ``resume`` names; what to log about it."""
    if resume is None:
        return []
    if resume != 'auto':
        cfg.resume, cfg.load_from = True, resume
        return []
    notes = [(logging.INFO, f'--resume: removed {stale}, left by an interrupted save')
             for stale in remove_stale_temporaries(cfg.work_dir)]
    path, skipped = newest_readable_checkpoint(cfg.work_dir)
    notes += [(logging.WARNING, f'--resume: passing over unreadable checkpoint {line}')
              for line in skipped]
    notes.append((logging.INFO, f'--resume: resuming from {path}') if path else
                 (logging.WARNING, f'--resume: no checkpoint in {cfg.work_dir}; training '
                                   f'from the start'))
    cfg.resume, cfg.load_from = path is not None, path and str(path)
    return notes


def train(config: str | os.PathLike | Config | dict, work_dir: str | None = None,
          cfg_options: dict[str, Any] | None = None, resume: str | None = None,
          amp: bool = False, launcher: str = 'none') -> Runner:
    """Train a config with mmengine's Runner and return the runner afterwards.

    See :func:`build_runner` for the arguments. Validation runs as the config's
    ``train_cfg`` says; the best checkpoint by validation ``PCK@0.1`` and the
    latest one are kept in ``work_dir``.
    """
    runner = build_runner(config, work_dir, cfg_options, resume, amp, launcher)
    runner.train()
    return runner


def training_summary(runner: Runner, config: str | os.PathLike | None = None,
                     cfg_options: dict[str, Any] | None = None) -> list[str]:
    """What a finished training run leaves to say: its best checkpoint, the validation
    score that chose it, what validation measured, and the command that tests it.

    Empty when the run kept no best checkpoint (no validation, or no ``save_best``).
    With several ``save_best`` keys, the checkpoint of the first is named.

    Args:
        runner: The runner :func:`train` returned.
        config: The config as the user named it, for the command (default: the
            config file the runner was built from).
        cfg_options: The run's overrides: the command repeats them, so that it tests
            on the data this summary names.
    """
    hub = runner.message_hub
    indicators = [key for hook in runner.hooks if isinstance(hook, CheckpointHook)
                  for key in getattr(hook, 'key_indicators', None) or ()]
    # mmengine records one best checkpoint as best_ckpt, several as best_ckpt_<key>
    suffix = f'_{indicators[0]}' if len(indicators) > 1 else ''
    best = hub.get_info(f'best_ckpt{suffix}')
    if not best or not os.path.exists(best):
        return []
    best = _shown_path(best)
    score = hub.get_info(f'best_score{suffix}')
    scored = (f"validation {indicators[0] if indicators else 'score'} "
              f"{score:.1f}" if isinstance(score, (int, float)) else None)
    lines = [f"best checkpoint: {best}{f' ({scored})' if scored else ''}"]
    loop = runner.val_loop
    dataset = getattr(getattr(loop, 'dataloader', None), 'dataset', None)
    if dataset is not None:
        lines.append(f'validation measured {describe_measured_on(dataset_info(dataset))}')
    test = configured_dataset(runner.cfg, 'test')
    where = describe_measured_on(test) if test and test['dataset'] else 'the test split'
    config = config if config is not None else getattr(runner.cfg, 'filename', None)
    if config:
        command = ['corrkit', 'test', os.fspath(config), '--checkpoint', best]
        if cfg_options:
            command += ['--cfg-options'] + [f'{key}={_option(value)}'
                                            for key, value in cfg_options.items()]
        lines.append(f'test it on {where}: {shlex.join(command)}')
    return lines


def _option(value: Any) -> str:
    """A ``--cfg-options`` value as mmengine's ``DictAction`` reads it back."""
    if isinstance(value, (list, tuple)):
        brackets = '[]' if isinstance(value, list) else '()'
        return brackets[0] + ','.join(_option(v) for v in value) + brackets[1]
    return str(value)


def _shown_path(path: str) -> str:
    """``path`` relative to the working directory when it lies inside it."""
    relative = os.path.relpath(path)
    return path if relative.startswith('..') else relative
