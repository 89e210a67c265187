"""The dataset catalogue: where each benchmark is published and what its folder holds.

Each dataset module declares its :class:`DatasetSource` next to its loader
class and adds it to :data:`DATASETS_SOURCES` with :func:`register_source`;
:mod:`corrkit.datasets.download` fetches what the catalogue lists, and the
loaders name it in their messages when a dataset is missing.
"""
from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path

__all__ = ['DATASETS_SOURCES', 'DatasetSource', 'RemoteFile', 'get_source',
           'missing_dataset_message', 'register_source']


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


#: The catalogue, by name: what ``tools/download_datasets.py`` offers. The
#: dataset modules fill it with :func:`register_source`.
DATASETS_SOURCES: dict[str, DatasetSource] = {}


def register_source(source: DatasetSource) -> DatasetSource:
    """Add ``source`` to :data:`DATASETS_SOURCES` and return it.

    Raises:
        KeyError: If another source already has its name.
    """
    known = DATASETS_SOURCES.get(source.name)
    if known is not None and known != source:
        raise KeyError(f"a dataset source named '{source.name}' is already registered "
                       f"(directory {known.directory})")
    DATASETS_SOURCES[source.name] = source
    return source


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
        command (for a source of the catalogue) and the published files, for
        placing them by hand.

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
