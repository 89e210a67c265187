"""Image features kept on disk between runs (``corrkit transfer --feature-cache DIR``).

An entry is keyed by everything its maps depend on: the image's content
(SHA-256 of the file), the region encoded, the model (config and weights,
:func:`~corrkit.apis.batch.model_fingerprint`), the precision, the model's input
size and whether mirrored maps were encoded. A second run with other
references finds every target's features and encodes nothing again.

Entries are tensors only, read with ``torch.load(weights_only=True)``; one that
cannot be read or does not hold what its name says is encoded again and
rewritten. The folder is created private (0700); a folder owned by another
user or writable by others is not used (a warning says why), since whoever
can write it decides the features.
"""
from __future__ import annotations

import hashlib
import json
import os
import stat
import warnings
from pathlib import Path
from typing import Any

import torch

from ..models.features import ImageFeatures, ImageFrame
from ..utils.fileio import atomic_path

__all__ = ['FeatureStore', 'STORE_DTYPES']

#: How maps may be stored: as computed, or in half precision (half the disk).
STORE_DTYPES = {'float32': torch.float32, 'float16': torch.float16}
FORMAT_VERSION = 1


def _unusable(folder: Path) -> str | None:
    """Why ``folder`` must not be trusted, or None."""
    info = folder.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        return 'it is not a folder (or is a symbolic link)'
    if hasattr(os, 'geteuid') and info.st_uid != os.geteuid():
        return f'it belongs to another user (uid {info.st_uid})'
    if info.st_mode & 0o022:
        return f'others may write into it (mode {stat.S_IMODE(info.st_mode):o})'
    return None


class FeatureStore:
    """A folder of encoded images.

    Args:
        folder: Where entries live (created 0700).
        model: The model's fingerprint (:func:`~corrkit.apis.batch.model_fingerprint`).
        precision: The precision features are computed in.
        input_size: The model's input size.
        dtype: ``'float32'`` or ``'float16'``: how maps are stored (loaded back in
            the model's dtype).

    Attributes:
        usable: False when the folder cannot be trusted or created (nothing is
            read or written then).
        hits: Entries read so far.
        writes: Entries written so far.
    """

    def __init__(self, folder: str | os.PathLike, model: dict, precision: str,
                 input_size: tuple[int, int], dtype: str = 'float32'):
        if dtype not in STORE_DTYPES:
            raise ValueError(f'feature cache dtype must be one of {list(STORE_DTYPES)}, '
                             f'got {dtype!r}')
        self.folder, self.dtype = Path(folder), STORE_DTYPES[dtype]
        self.context = {'model': model, 'precision': precision,
                        'input_size': list(input_size), 'dtype': dtype,
                        'format': FORMAT_VERSION}
        self.hits = self.writes = 0
        self.usable = True
        try:
            self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            why = _unusable(self.folder)
        except OSError as err:
            why = f'it cannot be created ({err})'
        if why is not None:
            warnings.warn(f"feature cache '{self.folder}' is not used: {why}; features are "
                          f'computed without it', stacklevel=2)
            self.usable = False

    def key(self, image_sha256: str, crop: Any, mirrored: bool) -> str:
        """The entry name for one image, region and mirroring."""
        text = json.dumps({**self.context, 'image': image_sha256, 'crop': crop,
                           'mirrored': mirrored}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f'{key}.pt'

    def load(self, key: str, like: torch.dtype, device: torch.device | str = 'cpu'
             ) -> ImageFeatures | None:
        """The stored features, or None (no entry, or one that does not hold them)."""
        if not self.usable:
            return None
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            entry = torch.load(path, map_location='cpu', weights_only=True)
            if entry.get('key') != key:
                return None
            frame = ImageFrame(tuple(entry['size']), tuple(entry['input_size']),
                               tuple(entry['padding']))
            mirrored = entry['mirrored']
            features = ImageFeatures(tuple(m.to(device, like) for m in entry['maps']), (frame,),
                                     None if mirrored is None
                                     else tuple(m.to(device, like) for m in mirrored))
        except Exception:  # noqa: BLE001 - a truncated or foreign file is a miss, not a crash
            return None
        self.hits += 1
        return features

    def save(self, key: str, features: ImageFeatures) -> None:
        """Store one image's features (atomically; a write that fails is skipped)."""
        if not self.usable:
            return
        frame = features.frames[0]
        entry = {'key': key, 'size': list(frame.size), 'input_size': list(frame.input_size),
                 'padding': list(frame.padding),
                 'maps': [m.detach().to('cpu', self.dtype).contiguous() for m in features.maps],
                 'mirrored': None if features.mirrored is None else
                 [m.detach().to('cpu', self.dtype).contiguous() for m in features.mirrored]}
        path = self._path(key)
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            with atomic_path(path) as tmp:
                torch.save(entry, tmp)
        except OSError as err:
            warnings.warn(f"feature cache: cannot write '{path}' ({err}); going on without it",
                          stacklevel=2)
            return
        self.writes += 1
