"""Installing the benchmark datasets (SPair-71k, PF-PASCAL, PF-WILLOW) under a data root.

Each dataset module declares its :class:`~corrkit.datasets.sources.DatasetSource`
(where its files are published, which folder it gets, what that folder should
look like); :func:`prepare_dataset` turns one into a ready folder::

    root/
        .downloads/     archives as downloaded (may be deleted once installed)
        SPair-71k/      the dataset, laid out as ``DatasetSource.layout`` says

Nothing is fetched when the dataset is already in place, whether it was
downloaded here or placed by hand, so everything else runs offline. The
publishers give no checksums or sizes for these archives, so the built-in
sources carry none (``sha256=None``, ``size=None``: not published); their
files are only checked to unpack into the expected layout. Fetching, checking
and unpacking themselves are :mod:`corrkit.utils.download`'s; the names of
that module and of :mod:`corrkit.datasets.sources` stay importable from here.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from ..errors import DatasetNotFoundError, DownloadError
from ..utils.download import Progress, download_file, print_progress, safe_extract, verify_file
from ..utils.fileio import atomic_path, sha256_of
# the dataset modules register their sources in the catalogue when imported
from .pfpascal import PFPASCAL_SOURCE
from .pfwillow import PFWILLOW_SOURCE
from .sources import (DATASETS_SOURCES, DatasetSource, RemoteFile, get_source,
                      missing_dataset_message)
from .spair import SPAIR_SOURCE

__all__ = ['DATASETS_SOURCES', 'DatasetNotFoundError', 'DatasetSource', 'DownloadError',
           'PFPASCAL_SOURCE', 'PFWILLOW_SOURCE', 'Progress', 'RemoteFile', 'SPAIR_SOURCE',
           'arrange', 'download_file', 'get_source', 'missing_dataset_message',
           'prepare_dataset', 'print_progress', 'safe_extract', 'sha256_of', 'verify_file']


def arrange(extracted: str | os.PathLike, target: str | os.PathLike,
            hoist: Iterable[str] = ('*_pairs.csv',), keep: Iterable[str] = ()) -> Path:
    """Move an unpacked archive's content into a dataset folder.

    Archives often wrap everything in one top folder (``PF-dataset-PASCAL/...``):
    when ``extracted`` holds a single folder (macOS ``__MACOSX`` metadata aside)
    whose name is not in ``keep``, its content is taken instead. Files matching
    ``hoist`` anywhere in that tree go to the root of ``target``; the rest is
    merged into ``target`` under its relative path, replacing same-named files.

    Args:
        extracted: Folder an archive was unpacked into; emptied by the move.
        target: The dataset folder; created if needed.
        hoist: Glob patterns of files to move to ``target``'s root.
        keep: Names of top folders that belong to the layout, never unwrapped.

    Returns:
        ``target`` as a ``Path``.

    Raises:
        DownloadError: If a file would replace a folder or the reverse.
    """
    extracted, target = Path(extracted), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(extracted / '__MACOSX', ignore_errors=True)
    entries = list(extracted.iterdir())
    content = extracted
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in set(keep):
        content = entries[0]
    for pattern in hoist:
        for path in sorted(content.rglob(pattern)):
            if path.is_file():
                _place(path, target / path.name)
                _prune_empty(path.parent, content)
    _merge(content, target)
    return target


def _place(src: Path, dst: Path) -> None:
    if dst.is_dir() != src.is_dir() and dst.exists():
        kind = 'folder' if dst.is_dir() else 'file'
        raise DownloadError(f'cannot place {src.name} at {dst}: a {kind} is already there')
    if dst.is_file() or dst.is_symlink():
        dst.unlink()
    shutil.move(str(src), str(dst))


def _merge(src: Path, dst: Path) -> None:
    for entry in list(src.iterdir()):
        out = dst / entry.name
        if entry.is_dir() and not entry.is_symlink() and out.is_dir():
            _merge(entry, out)
        else:
            _place(entry, out)


def _prune_empty(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_relative_to(stop) and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _copy_into(src: Path, dst: Path) -> None:
    if dst.is_dir():
        raise DownloadError(f'cannot place {src.name} at {dst}: a folder is already there')
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _missing(source: DatasetSource, path: Path) -> list[str]:
    return [p for p in source.check_paths if not (path / p).exists()]


def prepare_dataset(source: str | DatasetSource, root: str | os.PathLike = 'data',
                    download: bool = True, verbose: bool = True) -> Path:
    """Make a dataset available under ``root`` and return its folder.

    When every ``check_paths`` entry exists, returns at once without network.
    Otherwise downloads each file into ``ROOT/.downloads`` (kept, and reused
    when it still verifies), unpacks or copies it into ``ROOT/<directory>``
    with :func:`arrange`, and checks the result.

    Args:
        source: Key of :data:`DATASETS_SOURCES` (``'spair'``, ``'pfpascal'``,
            ``'pfwillow'``) or a :class:`DatasetSource`.
        root: Folder holding the datasets.
        download: Fetch a missing dataset; if False, raise instead.
        verbose: Print what is downloaded, with progress.

    Returns:
        The dataset folder, ``ROOT/<directory>``.

    Raises:
        DatasetNotFoundError: If the dataset is missing and ``download`` is False;
            the message gives the layout and the download command.
        DownloadError: If a file cannot be fetched, verified or unpacked; the
            message names the dataset, the URL, the expected path and layout.
        ValueError: If ``source`` is an unknown key.
    """
    source = get_source(source)
    path = Path(root).expanduser() / source.directory
    if not _missing(source, path):
        return path
    if not download:
        raise DatasetNotFoundError(missing_dataset_message(source, path))
    cache = path.parent / '.downloads'
    keep = {Path(p).parts[0] for p in source.check_paths}
    for remote in source.files:
        archive = cache / remote.filename
        if verbose:
            print(f'{source.name}: {remote.url} -> {archive}', flush=True)
        try:
            download_file(remote.url, archive, remote.sha256, remote.size,
                          progress=print_progress if verbose else None)
        except DownloadError as err:
            raise DownloadError(f'{source.name} dataset: {err}\n'
                                f'{missing_dataset_message(source, path)}') from err
        if not remote.extract:
            _copy_into(archive, path / remote.filename)
            continue
        staging = Path(tempfile.mkdtemp(prefix=f'.{remote.filename}.', dir=cache))
        try:
            safe_extract(archive, staging)
            arrange(staging, path, source.hoist, keep)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    missing = _missing(source, path)
    if missing:
        raise DownloadError(f"{', '.join(missing)} still missing after unpacking the "
                            f'{source.name} files.\n{missing_dataset_message(source, path)}')
    return path
