"""Fetching files, checking them (size, SHA-256) and unpacking archives safely.

Nothing here knows about datasets: :mod:`corrkit.datasets.download` says what
to fetch for each benchmark and arranges what it unpacks.
"""
from __future__ import annotations

import http.client
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Container, Optional

from ..errors import ChecksumError, DownloadError
from .fileio import atomic_path, sha256_of

__all__ = ['Progress', 'download_file', 'print_progress', 'safe_extract', 'verify_file']

#: ``progress(done_bytes, total_bytes_or_None)``, called about every tenth of a download.
Progress = Callable[[int, Optional[int]], None]


def verify_file(path: str | os.PathLike, sha256: str | None = None, size: int | None = None,
                label: str | None = None) -> Path:
    """Check that a file exists and, where given, has the expected size and SHA-256.

    Args:
        path: The file.
        sha256: Expected hex SHA-256, or None to skip the check.
        size: Expected size in bytes, or None to skip the check.
        label: How messages name the file; default its path.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ChecksumError: If the SHA-256 differs (a :class:`~corrkit.errors.DownloadError`
            too), naming the file and both digests.
        DownloadError: If the file is missing or its size differs, naming the file,
            the expected and the actual value.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / 'f.bin'
        >>> _ = path.write_bytes(b'12345')
        >>> verify_file(path, size=6, label='f.bin')
        Traceback (most recent call last):
        ...
        corrkit.errors.DownloadError: f.bin has 5 bytes, expected 6 bytes
    """
    path = Path(path)
    label = str(path) if label is None else label
    if not path.is_file():
        raise DownloadError(f'{label}: no such file ({path})')
    if size is not None and path.stat().st_size != size:
        raise DownloadError(f'{label} has {path.stat().st_size} bytes, expected {size} bytes')
    if sha256 is not None:
        actual = sha256_of(path)
        if actual != sha256.lower():
            raise ChecksumError(f'{label} has sha256 {actual}, expected {sha256}')
    return path


def print_progress(done: int, total: int | None) -> None:
    """The default ``progress`` of :func:`download_file`: one line per call."""
    mib = 1 << 20
    if total:
        print(f'    {done / mib:9.1f} / {total / mib:.1f} MiB ({100 * done // total}%)', flush=True)
    else:
        print(f'    {done / mib:9.1f} MiB', flush=True)


def download_file(url: str, dest: str | os.PathLike, sha256: str | None = None,
                  size: int | None = None, timeout: float = 60,
                  progress: Progress | None = print_progress) -> Path:
    """Download ``url`` to ``dest``, checked, unless ``dest`` is already there and checks out.

    The data goes through :func:`~corrkit.utils.fileio.atomic_path` and is
    renamed to ``dest`` only once it verifies, so ``dest`` is never half-written.

    Args:
        url: What to fetch; any scheme urllib knows (``https://``, ``file://``).
        dest: Destination file path; its folder is created.
        sha256: Expected hex SHA-256, or None where none is published.
        size: Expected size in bytes, or None where none is published.
        timeout: Seconds to wait for the server on connecting and on each read.
        progress: Called as ``progress(done, total)`` about every tenth of the
            file (every 50 MiB when the size is unknown); None for silence.

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        ChecksumError: If the file arrives whole but its SHA-256 differs; nothing is
            written to ``dest``.
        DownloadError: If the URL cannot be read (the machine may be offline)
            or the file does not verify.
    """
    dest = Path(dest)
    if dest.is_file():
        try:
            return verify_file(dest, sha256, size)
        except DownloadError as err:
            if progress is not None:
                print(f'{err}; downloading it again')
    with atomic_path(dest) as part:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, \
                    open(part, 'wb') as out:
                length = response.headers.get('Content-Length')
                _copy(response, out, int(length) if length and length.isdigit() else size,
                      progress)
        except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as err:
            reason = getattr(err, 'reason', err)
            raise DownloadError(f'could not download {url}: {reason} (the machine may be '
                                f'offline, or the server unreachable)') from err
        verify_file(part, sha256, size, label=f'{dest.name} downloaded from {url}')
    return dest


def _copy(response, out, total: int | None, progress: Progress | None) -> None:
    step = max(total // 10, 1) if total else 50 << 20
    done, next_report = 0, step
    for chunk in iter(lambda: response.read(1 << 20), b''):
        out.write(chunk)
        done += len(chunk)
        if progress is not None and done >= next_report:
            progress(done, total)
            next_report = (done // step + 1) * step


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Unpack a .zip, .tar, .tar.gz or .tgz archive into ``dest``, refusing unsafe members.

    Every member is checked before anything is written: absolute paths, paths
    with ``..`` that leave ``dest``, paths through a link of the archive, links
    pointing outside ``dest`` and device files are refused. Tar archives are
    also unpacked with ``filter='data'`` where Python has it.

    Args:
        archive: The archive; its type comes from its name, else from its content.
        dest: Folder to unpack into; created if needed.

    Returns:
        ``dest`` as a ``Path``.

    Raises:
        DownloadError: Naming the archive and, for an unsafe member, the member.
    """
    archive, dest = Path(archive), Path(dest)
    if not archive.is_file():
        raise DownloadError(f'{archive}: no such archive')
    lower = archive.name.lower()
    try:
        if lower.endswith('.zip'):
            _extract_zip(archive, dest)
        elif lower.endswith(('.tar', '.tar.gz', '.tgz', '.tar.bz2', '.tar.xz')):
            _extract_tar(archive, dest)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, dest)
        elif zipfile.is_zipfile(archive):
            _extract_zip(archive, dest)
        else:
            raise DownloadError(f'{archive} is not a .zip, .tar, .tar.gz or .tgz archive')
    except (zipfile.BadZipFile, tarfile.ReadError, EOFError) as err:
        raise DownloadError(f'{archive} is not a readable archive ({err}); '
                            f'delete it to download it again') from err
    return dest


def _refuse(archive: Path, member: str, why: str) -> DownloadError:
    return DownloadError(f"{archive}: refused member '{member}': {why}")


def _normalize(path: str, links: Container[str] = ()) -> str | None:
    """``path`` resolved lexically; None if it leaves the root or goes through one of ``links``."""
    parts: list[str] = []
    pieces = [p for p in path.split('/') if p not in ('', '.')]
    for i, piece in enumerate(pieces):
        if piece == '..':
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(piece)
        # a '..' after a link would be resolved against the link's target, not lexically
        if i < len(pieces) - 1 and '/'.join(parts) in links:
            return None
    return '/'.join(parts)


def _check_name(archive: Path, name: str, links: Container[str] = ()) -> None:
    if name.startswith(('/', '\\')) or (name[:1].isalpha() and name[1:2] == ':'):
        raise _refuse(archive, name, 'absolute path')
    if _normalize(name, links) is None:
        raise _refuse(archive, name, 'its path leaves the extraction folder')


def _extract_zip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            _check_name(archive, name)
        dest.mkdir(parents=True, exist_ok=True)
        zf.extractall(dest)


def _extract_tar(archive: Path, dest: Path) -> None:
    with tarfile.open(archive) as tf:
        members = tf.getmembers()
        links = {_normalize(m.name) for m in members if m.issym() or m.islnk()}
        for m in members:
            _check_name(archive, m.name, links)
            if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
                raise _refuse(archive, m.name, 'not a file, folder or link')
            if m.issym() or m.islnk():
                base = os.path.dirname(m.name) if m.issym() else ''
                if m.linkname.startswith('/') or _normalize(
                        f'{base}/{m.linkname}', links) is None:
                    raise _refuse(archive, m.name,
                                  f"link to '{m.linkname}' points outside the extraction folder")
        dest.mkdir(parents=True, exist_ok=True)
        if not hasattr(tarfile, 'data_filter'):  # Python < 3.11.4: the checks above only
            tf.extractall(dest)
            return
        try:
            tf.extractall(dest, filter='data')
        except tarfile.FilterError as err:
            raise _refuse(archive, err.tarinfo.name, str(err)) from err
