"""Publishing a trained checkpoint: weights and what rebuilds the model, named by their hash."""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import torch

from .. import __version__
from ..utils.fileio import atomic_path
from ..utils.text import first_line
from .inference import resolve_checkpoint

__all__ = ['publish_model', 'KEPT_META']

#: What a published checkpoint keeps of mmengine's ``meta``: the merged config (to
#: rebuild the model), where training stopped, its seed, versions and the dataset's meta.
KEPT_META = ('cfg', 'epoch', 'iter', 'seed', 'mmengine_version', 'dataset_meta')


def publish_model(checkpoint: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Strip a training checkpoint for publishing and name it ``<name>-<sha256[:8]>.pth``.

    Keeps the weights (``state_dict``) and the meta needed to rebuild and cite
    the model (:data:`KEPT_META`, plus corrkit's version); drops the optimiser,
    the schedulers, the message hub and the run's name and time. The hash suffix
    is the convention torch.hub checks file names against, and what the model
    index's ``Weights SHA256`` then holds in full.

    Args:
        checkpoint: A training checkpoint, or a work directory (its newest).
        out: ``<folder>/<name>.pth`` or ``<folder>/<name>``: where to write and
            the name before the hash.

    Returns:
        The written file, ``<folder>/<name>-<sha256[:8]>.pth``.

    Raises:
        FileNotFoundError: If the checkpoint does not exist.
        ValueError: If it cannot be read, or holds no ``state_dict``.
    """
    path = resolve_checkpoint(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - truncated zip, foreign pickle, not a checkpoint
        raise ValueError(f"checkpoint '{path}' cannot be read with torch.load(weights_only=True)"
                         f' ({type(err).__name__}: {first_line(err)})') from err
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get('state_dict'), dict):
        raise ValueError(f"checkpoint '{path}' holds no 'state_dict'; publish a training "
                         f'checkpoint (tools/train.py writes them)')
    meta = {k: v for k, v in (ckpt.get('meta') or {}).items() if k in KEPT_META}
    meta['corrkit_version'] = __version__
    out = Path(out)
    stem = out.name[:-len('.pth')] if out.name.endswith('.pth') else out.name
    buffer = io.BytesIO()  # the name depends on the bytes: hash them before writing
    torch.save({'meta': meta, 'state_dict': ckpt['state_dict']}, buffer)
    data = buffer.getvalue()
    final = out.with_name(f'{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth')
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)
    return final
