"""The model index: per named model, its config, weights, training and PCK (``model-index.yml``).

The index is OpenMMLab's model-index format: ``model-index.yml`` imports one
metafile per family (``configs/metafiles/*.yml``), each with ``Collections`` and
``Models``. corrkit adds a ``Weights Files`` table (URL and SHA-256 of each file
a backbone loads, by id) and, per model, ``Metadata: {Zero-shot, Backbone
Weights}`` and per result ``Source`` (``paper`` or ``corrkit``; a corrkit
measurement also names its ``Machine``, ``Date`` and ``Command``). A clone reads
the repository's files; a wheel carries them next to its configs
(``corrkit/.mim``).
"""
from __future__ import annotations

import datetime
import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .model_names import config_root, suggest_names

__all__ = ['ModelInfo', 'Result', 'WeightsFile', 'index_path', 'load_model_index', 'model_info',
           'weights_file']

#: A Hugging Face file URL: ``https://huggingface.co/<org>/<repo>/resolve/<revision>/<file>``.
HF_URL = re.compile(r'https://huggingface\.co/([^/]+/[^/]+)/resolve/([^/]+)/(.+)')
SOURCES = ('paper', 'corrkit')


@dataclass(frozen=True)
class WeightsFile:
    """A weights file: where it is published and what it must hash to.

    Attributes:
        url: Where to fetch it. A ``huggingface.co/.../resolve/...`` URL goes
            through the Hugging Face cache, any other through torch.hub's.
        sha256: Expected hex SHA-256, or None where none is pinned: the file is
            then *unverified* (:attr:`verified`).
        id: The index's name for the file (a ``Weights Files`` key, or the model's
            name for its trained weights).
    """

    url: str
    sha256: str | None = None
    id: str = ''

    @property
    def verified(self) -> bool:
        """Whether the index pins the file's SHA-256. An unverified file is checked only
        against what its cache says (a Hugging Face blob's digest), and loading it warns.

        Examples:
            >>> WeightsFile('https://host/w.pth').verified
            False
        """
        return self.sha256 is not None

    @property
    def unverified_note(self) -> str:
        """One line naming an unverified file and how to pin it (``''`` if verified)."""
        if self.verified:
            return ''
        return (f"weights file '{self.id or self.filename}' ({self.url}) is unverified: the "
                f"model index pins no SHA-256 for it; pin it by writing the file's SHA-256 "
                f"from its hub page as its SHA256 in model-index.yml")

    @property
    def filename(self) -> str:
        """The file's base name (what the caches store it as)."""
        return self.url.rstrip('/').rsplit('/', 1)[-1]

    @property
    def hf_repo(self) -> tuple[str, str, str] | None:
        """``(repo_id, revision, path in repo)`` for a Hugging Face URL, else None."""
        match = HF_URL.fullmatch(self.url)
        return match.groups() if match else None


@dataclass(frozen=True)
class Result:
    """One PCK result of a model: the paper's or corrkit's own measurement.

    Attributes:
        dataset: Dataset and split, e.g. ``'SPair-71k (test)'``.
        metrics: ``{'PCK@0.1': 53.7, ...}`` in percent.
        source: ``'paper'`` (quoted from the collection's paper) or ``'corrkit'``.
        threshold: What α multiplies (``bbox``, ``img``, ``bbox-kp``, ``image``).
        machine: Where corrkit measured it (corrkit results only).
        date: When (ISO date; corrkit results only).
        command: How to reproduce it (corrkit results only).
        note: Anything a reader must know to compare the number.
    """

    dataset: str
    metrics: dict[str, float]
    source: str
    threshold: str = ''
    machine: str = ''
    date: str = ''
    command: str = ''
    note: str = ''


@dataclass(frozen=True)
class ModelInfo:
    """A named model's index entry.

    Attributes:
        name: The model name (its config's path below ``configs/`` without ``.py``).
        config: The config's path as the index writes it (``configs/<name>.py``).
        collection: The family (``In Collection``).
        metafile: The metafile the entry comes from.
        zero_shot: True if the model has no parameters outside its backbone, so
            the backbone's weights are all it needs.
        weights: The trained model's published weights, or None (none published).
        backbone_weights: The file its backbone loads, or None (random backbone).
        training_data: What it was (or is meant to be) trained on.
        training_resources: The hardware of corrkit's training run, or why none.
        training_time: How long that took, or why not measured.
        results: Paper and corrkit PCK results.
        paper: ``{'Title': ..., 'URL': ...}`` of the collection, or empty.
    """

    name: str
    config: str
    collection: str
    metafile: Path
    zero_shot: bool
    weights: WeightsFile | None
    backbone_weights: WeightsFile | None
    training_data: str
    training_resources: str
    training_time: str
    results: tuple[Result, ...] = ()
    paper: dict[str, str] = field(default_factory=dict)


def index_path() -> Path:
    """``model-index.yml`` next to the config folder (the repository root, or ``corrkit/.mim``)."""
    return config_root().parent / 'model-index.yml'


def _require(mapping: Any, key: str, where: str, kind: type | tuple[type, ...] = str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ValueError(f"{where}: missing key '{key}'")
    value = mapping[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else ' or '.join(k.__name__ for k in kind)
        raise ValueError(f"{where}: '{key}' must be a {names}, got {value!r}")
    return value


def _sha256(value: Any, where: str) -> str:
    if not re.fullmatch(r'[0-9a-f]{64}', str(value)):
        raise ValueError(f'{where}: SHA256 must be 64 lowercase hex digits, got {value!r}')
    return str(value)


def _read_yaml(path: Path) -> dict:
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as err:
        raise FileNotFoundError(f"model index file '{path}' cannot be read ({err})") from err
    except yaml.YAMLError as err:
        raise ValueError(f"model index file '{path}' is not valid YAML ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"model index file '{path}' must hold a mapping, got {type(data).__name__}")
    return data


def _result(entry: Any, where: str) -> Result:
    source = _require(entry, 'Source', where)
    if source not in SOURCES:
        raise ValueError(f"{where}: Source must be one of {SOURCES}, got {source!r}")
    metrics = _require(entry, 'Metrics', where, dict)
    for key, value in metrics.items():
        if not (isinstance(value, (int, float)) and 0 <= value <= 100):
            raise ValueError(f'{where}: metric {key} must be a percentage, got {value!r}')
    extra = {}
    if source == 'corrkit':  # a measurement must say where, when and how
        extra = {key.lower(): str(_require(entry, key, where, (str, datetime.date))).strip()
                 for key in ('Machine', 'Date', 'Command')}
    return Result(_require(entry, 'Dataset', where), {k: float(v) for k, v in metrics.items()},
                  source, str(entry.get('Threshold', '')), note=str(entry.get('Note', '')), **extra)


def _model(entry: Any, files: dict[str, WeightsFile], collections: dict[str, dict],
           metafile: Path) -> ModelInfo:
    where = f"'{metafile}', model {entry.get('Name') if isinstance(entry, dict) else entry!r}"
    name = _require(entry, 'Name', where)
    meta = _require(entry, 'Metadata', where, dict)
    backbone = meta.get('Backbone Weights')
    if backbone is not None and backbone not in files:
        raise ValueError(f"{where}: Backbone Weights '{backbone}' is not in the index's "
                         f'Weights Files ({sorted(files)})')
    url = entry.get('Weights')
    weights = None
    if url is not None:
        weights = WeightsFile(_require(entry, 'Weights', where),
                              _sha256(_require(entry, 'Weights SHA256', where), where), name)
    collection = _require(entry, 'In Collection', where)
    if collection not in collections:
        raise ValueError(f"{where}: collection '{collection}' is not defined in any metafile")
    results = tuple(_result(r, f'{where}, result {i + 1}')
                    for i, r in enumerate(entry.get('Results') or []))
    return ModelInfo(name, _require(entry, 'Config', where), collection, metafile,
                     _require(meta, 'Zero-shot', where, bool), weights,
                     files.get(backbone), _require(meta, 'Training Data', where),
                     _require(meta, 'Training Resources', where),
                     _require(meta, 'Training Time', where), results,
                     dict(collections[collection].get('Paper') or {}))


def load_model_index(path: str | os.PathLike | None = None) -> dict[str, ModelInfo]:
    """Read and check the model index.

    Args:
        path: ``model-index.yml``; default :func:`index_path`. Imported metafiles
            are relative to its folder.

    Returns:
        Every model's :class:`ModelInfo`, by name.

    Raises:
        FileNotFoundError: If the index or a metafile cannot be read.
        ValueError: If an entry lacks a key or holds a bad value; the message
            names the file, the model and the key.

    Examples:
        >>> index = load_model_index()
        >>> info = index['zeroshot_mobilenetv2']
        >>> info.config, info.zero_shot, info.backbone_weights.filename
        ('configs/zeroshot_mobilenetv2.py', True, 'mobilenet_v2-b0353104.pth')
    """
    return dict(_load(Path(path) if path is not None else index_path())[1])


def weights_file(key: str, path: str | os.PathLike | None = None) -> WeightsFile:
    """A file of the index's ``Weights Files`` table: the one place its URL and SHA-256 are written.

    Args:
        key: Its id, e.g. ``'torchvision/mobilenet_v2.IMAGENET1K_V1'``.
        path: ``model-index.yml``; default :func:`index_path`.

    Raises:
        KeyError: If the table has no such file; the message suggests close ids.

    Examples:
        >>> weights_file('torchvision/mobilenet_v2.IMAGENET1K_V1').filename
        'mobilenet_v2-b0353104.pth'
    """
    path = Path(path) if path is not None else index_path()
    files = dict(_load(path)[0])
    if key not in files:
        raise KeyError(f"no file '{key}' in the Weights Files of the model index ({path})"
                       f'{suggest_names(key, list(files))}')
    return files[key]


@functools.lru_cache(maxsize=4)
def _load(path: Path) -> tuple[tuple[tuple[str, WeightsFile], ...],
                                tuple[tuple[str, ModelInfo], ...]]:
    """The index's weights files and models, by id and by name (immutable: it is cached)."""
    root = _read_yaml(path)
    files = {}
    for key, spec in (root.get('Weights Files') or {}).items():
        where = f"'{path}', Weights Files '{key}'"
        sha = spec.get('SHA256') if isinstance(spec, dict) else None
        files[key] = WeightsFile(_require(spec, 'URL', where),
                                 None if sha is None else _sha256(sha, where), key)
    metafiles = [path.parent / p for p in _require(root, 'Import', f"'{path}'", list)]
    loaded = [(m, _read_yaml(m)) for m in metafiles]
    collections = {c['Name']: c for _, data in loaded for c in data.get('Collections') or []}
    models: dict[str, ModelInfo] = {}
    for metafile, data in loaded:
        for entry in data.get('Models') or []:
            info = _model(entry, files, collections, metafile)
            if info.name in models:
                raise ValueError(f"'{metafile}': model '{info.name}' is already listed in "
                                 f"'{models[info.name].metafile}'")
            models[info.name] = info
    return tuple(files.items()), tuple(models.items())


def model_info(name: str) -> ModelInfo:
    """The index entry of a model name.

    Raises:
        KeyError: If the index has no such model; the message suggests close names.
    """
    index = load_model_index()
    if name not in index:
        raise KeyError(f"no model named '{name}' in the model index ({index_path()})"
                       f'{suggest_names(name, list(index))}')
    return index[name]
