"""Checkpoints that load with ``torch.load(weights_only=True)``."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer
from mmengine.model import is_model_wrapper
from torch import nn

from ..registry import HOOKS

#: Marks a ``HistoryBuffer`` stored as plain data.
BUFFER_TAG = '__history_buffer__'


@HOOKS.register_module()
class SafeCheckpointHook(Hook):
    """Store mmengine's run state as plain data, so checkpoints load with ``weights_only=True``.

    mmengine puts its ``MessageHub`` in every checkpoint: logged values as
    ``HistoryBuffer`` objects (pickled through ``getattr``) and numpy scalars.
    ``torch.load(weights_only=True)``, torch's default since 2.6 and what
    mmengine's resume calls, rejects them, and allow-listing ``getattr`` would
    switch the safety off. This hook writes them as tensors, numbers and dicts
    before a save and rebuilds them after a load, so checkpoints load with
    ``weights_only=True`` and nothing else.

    ``configs/_base_/default_runtime.py`` enables it for every corrkit config.
    """

    priority = 'VERY_LOW'  # after every other hook has added to the checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        hub = checkpoint.get('message_hub')
        if hub is not None:
            checkpoint['message_hub'] = plain_message_hub(hub)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Rebuild the run state; when resuming, refuse a checkpoint of another model.

        Also drops ``meta['config']``: mmengine's resume would execute it as a
        Python config (corrkit's checkpoints keep their config under ``meta['cfg']``,
        as text that is never run).
        """
        hub = checkpoint.get('message_hub')
        if hub is not None:
            checkpoint['message_hub'] = rebuilt_message_hub(hub)
        meta = checkpoint.get('meta')
        if isinstance(meta, dict):
            meta.pop('config', None)
        if getattr(runner, '_resume', False) and 'state_dict' in checkpoint:
            model = runner.model.module if is_model_wrapper(runner.model) else runner.model
            source = getattr(runner, '_load_from', None) or 'being resumed'
            check_state_dict_keys(checkpoint['state_dict'], model, f"checkpoint '{source}'")


def check_state_dict_keys(state: dict, model: nn.Module, source: str) -> None:
    """Raise unless ``state`` has exactly the keys of ``model.state_dict()``.

    Raises:
        RuntimeError: Naming ``source`` and the model, with up to ten missing and
            ten unexpected keys.
    """
    expected = list(model.state_dict())
    known = set(expected)
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in known]
    if missing or unexpected:
        raise RuntimeError(f'{source} does not fit {type(model).__name__}: '
                           f'missing keys {missing[:10]}{"..." if len(missing) > 10 else ""}, '
                           f'unexpected keys {unexpected[:10]}'
                           f'{"..." if len(unexpected) > 10 else ""}')


def plain_message_hub(hub: dict) -> dict:
    """A ``MessageHub.state_dict()`` with buffers and numpy values as plain data.

    Examples:
        >>> hub = {'log_scalars': {'loss': HistoryBuffer([1.0, 2.0], [1, 1])},
        ...        'runtime_info': {'eta': np.float64(3.5)}}
        >>> plain = plain_message_hub(hub)
        >>> plain['runtime_info']['eta'], plain['log_scalars']['loss']['log_history']
        (3.5, tensor([1., 2.], dtype=torch.float64))
    """
    out = dict(hub)
    out['log_scalars'] = {key: _buffer_to_dict(value) if isinstance(value, HistoryBuffer)
                          else _plain(value) for key, value in hub.get('log_scalars', {}).items()}
    out['runtime_info'] = _plain(hub.get('runtime_info', {}))
    return out


def rebuilt_message_hub(hub: dict) -> dict:
    """The inverse of :func:`plain_message_hub` (anything else is left as it is)."""
    out = dict(hub)
    out['log_scalars'] = {key: _dict_to_buffer(value) if isinstance(value, dict)
                          and value.get(BUFFER_TAG) else value
                          for key, value in hub.get('log_scalars', {}).items()}
    return out


def _buffer_to_dict(buffer: HistoryBuffer) -> dict:
    logs, counts = buffer.data
    return {BUFFER_TAG: True, 'max_length': buffer.max_length,
            'log_history': torch.from_numpy(np.array(logs)),
            'count_history': torch.from_numpy(np.array(counts))}


def _dict_to_buffer(value: dict) -> HistoryBuffer:
    return HistoryBuffer(value['log_history'].tolist(), value['count_history'].tolist(),
                         value['max_length'])


def _plain(value: Any) -> Any:
    """numpy scalars → Python numbers, arrays → tensors, containers recursively."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        return type(value)((k, _plain(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value
