"""Files written atomically, hashed, and found inside installed packages.

Every corrkit writer that must never leave a half-written file under its final
name (checkpoints, downloads, extracted weights) goes through :func:`atomic_path`
or :func:`atomic_write`: the data goes to a hidden temporary file in the same
folder, is flushed to disk and renamed over the final name, so a reader sees
the previous complete file or the new complete one.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Iterator, Sequence

from ..errors import AnnotationError

__all__ = ['PIP_NAMES', 'atomic_folder', 'atomic_path', 'atomic_write', 'package_file',
           'common_folder', 'inside_root', 'sha256_of', 'stale_temporaries']


def _temporary_name(path: Path) -> Path:
    # the pid and a random token keep concurrent writers of one file apart
    return path.with_name(f'.{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp')


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path to write into; renamed over ``path`` when the block ends cleanly.

    The temporary file is created empty (exclusively, with the permissions of
    a plain ``open``, not ``mkstemp``'s 0600) next to ``path``, whose folder is
    created. The block writes it however it likes (streaming, checking it
    before the end); on leaving, the file is fsynced and renamed over ``path``
    with ``os.replace`` (atomic on POSIX and Windows). On any error in the
    block or the rename, ``KeyboardInterrupt`` included, the temporary file is
    removed and ``path`` is untouched.

    Args:
        path: The final file.

    Yields:
        The temporary file's path.

    Examples:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / 'out.txt'
        >>> with atomic_path(target) as tmp:
        ...     _ = tmp.write_text('complete')
        ...     target.exists()
        False
        >>> target.read_text()
        'complete'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_name(path)
    try:
        open(tmp, 'xb').close()
        yield tmp
        with open(tmp, 'r+b') as handle:  # fsync needs a writable handle on Windows
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder to fill; it replaces the folder ``path`` when the block ends cleanly.

    The temporary folder is a hidden sibling of ``path`` (same file system, so
    the final rename is cheap); its parent is created. On leaving the block, an
    existing ``path`` is removed and the temporary folder renamed to it; on any
    error in the block, the temporary folder is removed and ``path`` is
    untouched, so a crash never leaves a half-written folder behind.

    Args:
        path: The final folder.

    Yields:
        The temporary folder's path.

    Examples:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / 'data'
        >>> with atomic_folder(target) as tmp:
        ...     _ = (tmp / 'a.txt').write_text('complete')
        ...     target.exists()
        False
        >>> sorted(p.name for p in target.iterdir())
        ['a.txt']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{path.name}-', dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def atomic_write(data: bytes, path: str | os.PathLike) -> None:
    """Write ``data`` to ``path`` through :func:`atomic_path`.

    Args:
        data: The whole content.
        path: The final file; its folder is created.

    Examples:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / 'a.bin'
        >>> atomic_write(b'abc', target)
        >>> target.read_bytes()
        b'abc'
    """
    with atomic_path(path) as tmp:
        with open(tmp, 'wb') as handle:
            handle.write(data)


def stale_temporaries(folder: str | os.PathLike, pattern: str = '*') -> list[Path]:
    """The temporary files that interrupted atomic writes left in ``folder``.

    Args:
        folder: Where the writes went (need not exist).
        pattern: Glob of the final file names, e.g. ``'*.pth'``.

    Returns:
        The temporaries of files matching ``pattern``, sorted; only remove them
        when no process is writing into ``folder``.

    Examples:
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / '.epoch_1.pth.123.0a1b2c3d.tmp').write_bytes(b'')
        >>> [p.name for p in stale_temporaries(folder, '*.pth')]
        ['.epoch_1.pth.123.0a1b2c3d.tmp']
    """
    folder = Path(folder)
    return sorted(folder.glob(f'.{pattern}.*.tmp')) if folder.is_dir() else []


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in chunks.

    Examples:
        >>> import tempfile
        >>> target = Path(tempfile.mkdtemp()) / 'empty'
        >>> _ = target.write_bytes(b'')
        >>> sha256_of(target)[:16]
        'e3b0c44298fc1c14'
    """
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


#: Import names whose pip distribution has another name, for install hints.
PIP_NAMES = {'skimage': 'scikit-image'}


def package_file(package: str, relative: str) -> Path:
    """The path of a data file (or folder) inside an installed package, without importing it.

    Args:
        package: Import name of the package (``'skimage'``).
        relative: The path inside the package (``'data/astronaut.png'``).

    Returns:
        The file's path.

    Raises:
        FileNotFoundError: If the package is not installed (the message names
            the file and what to ``pip install``) or lacks the file (the
            message names both).

    Examples:
        >>> package_file('corrkit', 'errors.py').name
        'errors.py'
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"'{relative}' comes with the package '{package}', which is not "
                                f"installed; pip install {PIP_NAMES.get(package, package)}")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise FileNotFoundError(f"'{relative}' is missing from the installed package "
                                f"'{package}' (looked at {path})")
    return path


def inside_root(root: Path, relative: str, source: Path) -> Path:
    """``root / relative``, refusing paths that leave ``root``.

    The check is on the path as written (absolute paths and ``..`` are
    refused), so datasets whose folders are symbolic links still load.

    Raises:
        AnnotationError: If ``relative`` (read from ``source``) escapes ``root``.

    Examples:
        >>> inside_root(Path('data'), 'cat/a.jpg', Path('x.json')).as_posix()
        'data/cat/a.jpg'
        >>> inside_root(Path('data'), '../secret.jpg', Path('x.json'))
        Traceback (most recent call last):
        ...
        corrkit.errors.AnnotationError: x.json: path '../secret.jpg' points outside the dataset folder data
    """
    normal = os.path.normpath(str(PurePosixPath(relative.replace('\\', '/'))))
    if os.path.isabs(normal) or normal == '..' or normal.startswith('..' + os.sep):
        raise AnnotationError(f"{source}: path {relative!r} points outside the dataset "
                              f"folder {root}")
    return root / normal


def common_folder(paths: Sequence[str | os.PathLike]) -> Path:
    """The deepest folder holding every file of ``paths`` (absolute).

    Raises:
        ValueError: If ``paths`` is empty.

    Examples:
        >>> common_folder(['/d/a/x.jpg', '/d/b/y.jpg']).as_posix()
        '/d'
    """
    if not paths:
        raise ValueError('common_folder needs at least one path')
    return Path(os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths]))
