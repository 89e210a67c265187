"""Checkpoints written atomically, and the newest readable one found again.

mmengine's ``CheckpointHook`` writes a checkpoint with its file backend's ``put``:
the local backend opens the final path and writes into it, so a run killed during
a save leaves a truncated file under the checkpoint's name. :class:`AtomicLocalBackend`
writes with :func:`corrkit.utils.fileio.atomic_write` (a hidden temporary file in
the same folder, flushed to disk and renamed over the final name): the file under
that name is always either the previous complete checkpoint or the new complete one.

``configs/_base_/default_runtime.py`` selects it for the checkpoint hook
(``backend_args=dict(backend='atomic_local')``), and
:func:`~corrkit.apis.train.build_runner` does the same for configs that do not
inherit the runtime base. :func:`newest_readable_checkpoint` is what
``tools/train.py --resume`` (``resume='auto'``) resumes from.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import torch
from mmengine.fileio import LocalBackend, register_backend

from ..utils.fileio import atomic_write, stale_temporaries
from ..utils.text import first_line

#: Name of the backend in mmengine's file-backend registry.
BACKEND = 'atomic_local'

#: Checkpoints the checkpoint hook writes for the latest epoch or iteration.
_STEP_NAME = re.compile(r'^(epoch|iter)_(\d+)\.pth$')


@register_backend(BACKEND)
class AtomicLocalBackend(LocalBackend):
    """mmengine's local file backend with atomic writes (temporary file, then rename)."""

    def put(self, obj: bytes, filepath: str | Path) -> None:
        """Write ``obj`` to ``filepath`` so that a reader sees all of it or the old file."""
        atomic_write(obj, filepath)

    def put_text(self, obj: str, filepath: str | Path, encoding: str = 'utf-8') -> None:
        """Text version of :meth:`put`."""
        atomic_write(obj.encode(encoding), filepath)


def newest_readable_checkpoint(work_dir: str | os.PathLike) -> tuple[Path | None, list[str]]:
    """The latest ``epoch_N.pth`` / ``iter_N.pth`` in ``work_dir`` that loads.

    Checkpoints are tried from the highest step down; each is opened with
    ``torch.load(weights_only=True, mmap=True)`` (no code runs, and tensors are
    not read into memory). Files that fail, such as one truncated by a kill
    during a save with a non-atomic writer, are passed over.

    Returns:
        The checkpoint, or ``None`` when there is none, and one line per file
        passed over, naming it and why.
    """
    folder = Path(work_dir)
    steps = []
    for path in folder.glob('*.pth') if folder.is_dir() else ():
        match = _STEP_NAME.match(path.name)
        if match:
            steps.append((int(match.group(2)), path))
    skipped = []
    for _, path in sorted(steps, reverse=True):
        try:
            state = torch.load(path, map_location='cpu', weights_only=True, mmap=True)
        except Exception as err:  # noqa: BLE001 - any failure means: not resumable
            skipped.append(f'{path} ({type(err).__name__}: {first_line(err)})')
            continue
        if isinstance(state, dict) and 'state_dict' in state:
            return path, skipped
        skipped.append(f'{path} (no state_dict: not a training checkpoint)')
    return None, skipped


def remove_stale_temporaries(work_dir: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of saves that a kill interrupted; return their paths.

    Only call this when no process is saving into ``work_dir``.
    """
    stale = stale_temporaries(work_dir, '*.pth')
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
