"""Downloading, checking and unpacking the benchmark datasets (SPair-71k, PF-PASCAL, PF-WILLOW).

Each dataset is described by a :class:`DatasetSource`: where its files are
published, which folder it gets under the user's data root, what that folder
should look like and which paths prove that it is installed.
:func:`prepare_dataset` turns a source into a ready folder::

    root/
        .downloads/     archives as downloaded (may be deleted once installed)
        SPair-71k/      the dataset, laid out as ``DatasetSource.layout`` says

Nothing is fetched when the dataset is already in place, whether it was
downloaded here or placed by hand, so everything else runs offline. The
publishers give no checksums or sizes for these archives, so the built-in
sources carry none (``sha256=None``, ``size=None``: not published); their
files are only checked to unpack into the expected layout.
"""
from __future__ import annotations

import http.client
import os
import shlex
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Container, Iterable, Optional

from ..errors import DatasetNotFoundError, DownloadError
from ..utils.offline_weights import sha256_of

#: ``progress(done_bytes, total_bytes_or_None)``, called about every tenth of a download.
Progress = Callable[[int, Optional[int]], None]



@dataclass(frozen=True)
class RemoteFile:
    """One published file of a dataset.

    Args:
        url: Where it is published (``https://``, or ``file://`` for a local copy).
        filename: Name it is saved under in ``ROOT/.downloads``.
        sha256: Expected hex SHA-256, or None where the publisher gives none.
        size: Expected size in bytes, or None where the publisher gives none.
        extract: Unpack it (an archive) rather than copy it into the dataset folder.
    """

    url: str
    filename: str
    sha256: str | None = None
    size: int | None = None
    extract: bool = True


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset comes from and what its installed folder looks like.

    Args:
        name: Key on the command line and in :data:`DATASETS_SOURCES` (``'spair'``).
        directory: Folder created under the data root (``'SPair-71k'``).
        files: The files to fetch, in order; later ones add to the folder.
        layout: The expected tree relative to ``directory``, one entry a line; shown in errors.
        check_paths: Paths relative to ``directory`` that must all exist for the
            dataset to count as installed.
        hoist: Glob patterns of files moved from anywhere in an unpacked archive
            to the folder's root (some archives nest the pair lists).

    Examples:
        >>> DATASETS_SOURCES['spair'].directory
        'SPair-71k'
        >>> sorted(DATASETS_SOURCES)
        ['pfpascal', 'pfwillow', 'spair']
    """

    name: str
    directory: str
    files: tuple[RemoteFile, ...]
    layout: str
    check_paths: tuple[str, ...]
    hoist: tuple[str, ...] = ('*_pairs.csv',)


# sha256 and size are left None: the publishers do not publish them.
DATASETS_SOURCES: dict[str, DatasetSource] = {
    'spair': DatasetSource(
        name='spair', directory='SPair-71k',
        files=(RemoteFile('https://cvlab.postech.ac.kr/research/SPair-71k/data/SPair-71k.tar.gz',
                          'SPair-71k.tar.gz'),),
        layout=('JPEGImages/<category>/<name>.jpg\n'
                'PairAnnotation/{trn,val,test}/<pair>.json\n'
                'Layout/large/{trn,val,test}.txt'),
        check_paths=('JPEGImages', 'PairAnnotation', 'Layout/large/test.txt')),
    'pfpascal': DatasetSource(
        name='pfpascal', directory='PF-PASCAL',
        files=(RemoteFile('https://www.di.ens.fr/willow/research/proposalflow/dataset/'
                          'PF-dataset-PASCAL.zip', 'PF-dataset-PASCAL.zip'),
               RemoteFile('https://www.robots.ox.ac.uk/~xinghui/sd4match/'
                          'pf-pascal_image_pairs.zip', 'pf-pascal_image_pairs.zip')),
        layout=('JPEGImages/<name>.jpg\n'
                'Annotations/<class>/<name>.mat\n'
                '{trn,val,test}_pairs.csv'),
        check_paths=('JPEGImages', 'Annotations', 'test_pairs.csv')),
    'pfwillow': DatasetSource(
        name='pfwillow', directory='PF-WILLOW',
        files=(RemoteFile('https://www.di.ens.fr/willow/research/proposalflow/dataset/'
                          'PF-dataset.zip', 'PF-dataset.zip'),
               RemoteFile('https://www.robots.ox.ac.uk/~xinghui/sd4match/test_pairs.csv',
                          'test_pairs.csv', extract=False)),
        layout=('<class>/<name>.png  (classes car(G), car(M), car(S), duck(S), motorbike(G),\n'
                '    motorbike(M), motorbike(S), winebottle(M), winebottle(wC), winebottle(woC))\n'
                'test_pairs.csv'),
        check_paths=('test_pairs.csv', 'car(G)')),
}


def get_source(source: str | DatasetSource) -> DatasetSource:
    """The :class:`DatasetSource` for a key of :data:`DATASETS_SOURCES` (a source passes through).

    Raises:
        ValueError: If ``source`` is an unknown key.
    """
    if isinstance(source, DatasetSource):
        return source
    if source not in DATASETS_SOURCES:
        raise ValueError(f"unknown dataset '{source}'; known: {', '.join(DATASETS_SOURCES)}")
    return DATASETS_SOURCES[source]


def missing_dataset_message(name: str | DatasetSource, path: str | os.PathLike) -> str:
    """What to tell a user whose dataset folder ``path`` is missing or incomplete.

    Args:
        name: Key of :data:`DATASETS_SOURCES`, or a :class:`DatasetSource`.
        path: The folder where the dataset was expected (a loader's ``data_root``).

    Returns:
        A multi-line message: the path, the expected layout, the download
        command and the published files, for placing them by hand.

    Examples:
        >>> print(missing_dataset_message('pfwillow', 'data/PF-WILLOW'))
        The pfwillow dataset was not found at data/PF-WILLOW. Expected layout:
            data/PF-WILLOW/
                <class>/<name>.png  (classes car(G), ...
                test_pairs.csv
        Download it (needs network) with:
            python tools/download_datasets.py pfwillow --root data
        or place the files there by hand, unpacked from:
            https://www.di.ens.fr/willow/research/proposalflow/dataset/PF-dataset.zip
            https://www.robots.ox.ac.uk/~xinghui/sd4match/test_pairs.csv
    """
    source = get_source(name)
    path = Path(path)
    tree = '\n'.join(f'        {line}' for line in source.layout.splitlines())
    lines = [f'The {source.name} dataset was not found at {path}. Expected layout:',
             f'    {path}/', tree]
    if DATASETS_SOURCES.get(source.name) == source:
        lines += ['Download it (needs network) with:',
                  f'    python tools/download_datasets.py {source.name} '
                  f'--root {shlex.quote(str(path.parent))}']
        if path.name != source.directory:
            lines.append(f'    (this creates {path.parent / source.directory}; '
                         f'rename it to {path} or point data_root there)')
        lines.append('or place the files there by hand, unpacked from:')
    else:
        lines.append('Place the files there by hand, unpacked from:')
    lines += [f'    {remote.url}' for remote in source.files]
    return '\n'.join(lines)


def verify_file(path: str | os.PathLike, sha256: str | None = None,
                size: int | None = None) -> Path:
    """Check that a file exists and, where given, has the expected size and SHA-256.

    Args:
        path: The file.
        sha256: Expected hex SHA-256, or None to skip the check.
        size: Expected size in bytes, or None to skip the check.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        DownloadError: Naming the file, the expected and the actual value.
    """
    return _verify(Path(path), sha256, size, label=str(path))


def _verify(path: Path, sha256: str | None, size: int | None, label: str) -> Path:
    if not path.is_file():
        raise DownloadError(f'{label}: no such file ({path})')
    if size is not None and path.stat().st_size != size:
        raise DownloadError(f'{label} has {path.stat().st_size} bytes, expected {size} bytes')
    if sha256 is not None:
        actual = sha256_of(path)
        if actual != sha256.lower():
            raise DownloadError(f'{label} has sha256 {actual}, expected {sha256}')
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

    The data goes to ``dest.part`` and is renamed to ``dest`` only once it
    verifies, so ``dest`` is never half-written.

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
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + '.part')
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(part, 'wb') as out:
            length = response.headers.get('Content-Length')
            _copy(response, out, int(length) if length and length.isdigit() else size, progress)
        _verify(part, sha256, size, label=f'{dest.name} downloaded from {url}')
    except DownloadError:
        part.unlink(missing_ok=True)
        raise
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as err:
        part.unlink(missing_ok=True)
        reason = getattr(err, 'reason', err)
        raise DownloadError(f'could not download {url}: {reason} (the machine may be offline, '
                            f'or the server unreachable)') from err
    os.replace(part, dest)
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
            path.mkdir(parents=True, exist_ok=True)
            _place(Path(shutil.copy2(archive, cache / f'.{remote.filename}.copy')),
                   path / remote.filename)
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
