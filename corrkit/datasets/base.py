"""What the three benchmark loaders share: splits, pipelines, checks and messages."""
from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator, Sequence

import numpy as np
from mmengine.dataset import BaseDataset

from ..errors import AnnotationError, DatasetNotFoundError
from ..registry import TRANSFORMS
from ..utils.fileio import inside_root  # noqa: F401 - re-exported for the datasets
from .sources import DatasetSource, missing_dataset_message


class PairDataset(BaseDataset):
    """Base of the image-pair datasets (an mmengine ``BaseDataset``).

    Subclasses implement :meth:`load_pairs`, returning one dict per pair with
    ``src_img_path``, ``trg_img_path``, ``src_kps`` / ``trg_kps`` (``(K, 2)``
    pixels of the original images, pixel centres at integers), ``kps_valid``
    (``(K,)`` bool), ``category``, ``src_bbox`` / ``trg_bbox``
    (``[x1, y1, x2, y2]`` or ``None``), ``flip`` and ``pair_id``. Pairs without
    a valid keypoint are dropped here and counted in one warning.

    Args:
        data_root: The dataset's folder, in its official layout.
        split: One of the dataset's splits (``train`` is accepted for ``trn``).
        pipeline: Transform configs (built from ``TRANSFORMS``) or callables.
        test_mode: mmengine's test mode (no re-fetching); defaults to
            ``split != 'trn'``.
        indices: Keep only these pairs (an int keeps the first ``n``).
        serialize_data: Share the annotation list between workers as bytes.
        lazy_init: Defer reading the annotations until first use.
        max_refetch: mmengine's retry count when a pipeline returns ``None``.

    Raises:
        DatasetNotFoundError: If ``data_root`` does not exist; the message names
            the dataset, the path, the expected layout and how to get it.
        ValueError: If ``split`` is not one of the dataset's splits.
    """

    #: Where the dataset is published and what its folder holds (named when it is
    #: missing); None for a dataset that is not downloadable.
    source: ClassVar[DatasetSource | None] = None
    #: Accepted split names and the names the dataset's files use.
    SPLITS: ClassVar[dict[str, str]] = {'train': 'trn', 'trn': 'trn', 'val': 'val', 'test': 'test'}
    METAINFO: ClassVar[dict] = dict(classes=())

    def __init__(self, data_root: str, split: str = 'test',
                 pipeline: Sequence[dict | Callable] = (), test_mode: bool | None = None,
                 indices: int | Sequence[int] | None = None, serialize_data: bool = True,
                 lazy_init: bool = False, max_refetch: int = 1000):
        if split not in self.SPLITS:
            raise ValueError(f"{type(self).__name__} has no split {split!r}; "
                             f"expected one of {sorted(self.SPLITS)}")
        self.split = self.SPLITS[split]
        built = [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline]
        super().__init__(data_root=str(data_root), pipeline=built,
                         test_mode=self.split != 'trn' if test_mode is None else test_mode,
                         indices=indices, serialize_data=serialize_data,
                         lazy_init=lazy_init, max_refetch=max_refetch)

    def load_pairs(self, root: Path) -> list[dict]:
        """Read the annotations of :attr:`split` under ``root``."""
        raise NotImplementedError

    def measured_on(self) -> dict:
        """What an evaluation on this dataset measures, for reports and logs.

        Returns:
            ``{'dataset': class name, 'split', 'data_root', 'pairs': number of pairs,
            'categories': sorted category names of those pairs}`` (in the mini
            dataset each photo is its own category). Read once, then kept.
        """
        if getattr(self, '_measured_on', None) is None or self._measured_on['pairs'] != len(self):
            categories = {self.get_data_info(i).get('category') for i in range(len(self))}
            self._measured_on = dict(dataset=type(self).__name__, split=self.split,
                                     data_root=str(self.data_root), pairs=len(self),
                                     categories=sorted(str(c) for c in categories
                                                       if c is not None))
        return dict(self._measured_on, categories=list(self._measured_on['categories']))

    def missing_message(self, root: Path) -> str:
        """What to tell a user whose ``data_root`` does not exist."""
        if self.source is None:
            return f'{type(self).__name__}: data_root {root} does not exist'
        return missing_dataset_message(self.source, root)

    def load_data_list(self) -> list[dict]:
        root = Path(self.data_root)
        if not root.is_dir():
            raise DatasetNotFoundError(self.missing_message(root))
        pairs = self.load_pairs(root)
        kept = [pair for pair in pairs if pair['kps_valid'].any()]
        if pairs and not kept:
            raise AnnotationError(f'{type(self).__name__} ({root}, split {self.split!r}): none '
                                  f'of its {len(pairs)} pairs has a valid keypoint (first: '
                                  f"{pairs[0]['pair_id']}); check the keypoint fields")
        if len(kept) < len(pairs):
            dropped = [pair['pair_id'] for pair in pairs if not pair['kps_valid'].any()]
            warnings.warn(f'{type(self).__name__} ({root}, split {self.split!r}): dropped '
                          f'{len(dropped)} of {len(pairs)} pairs without a valid keypoint '
                          f'(first: {dropped[0]})', stacklevel=2)
        categories = sorted({pair['category'] for pair in kept})
        classes = tuple(self._metainfo.get('classes') or ()) or tuple(categories)
        self._metainfo['classes'] = classes
        for pair in kept:
            if pair['category'] not in classes:
                raise AnnotationError(f"pair {pair['pair_id']!r} under {root} has category "
                                      f"{pair['category']!r}, which is not one of {classes}")
            pair['category_id'] = classes.index(pair['category'])
        return kept


def make_pair(pair_id: str, category: str, src_img_path: Path, trg_img_path: Path,
              src_kps: Any, trg_kps: Any, valid: Any = None, src_bbox: Any = None,
              trg_bbox: Any = None, flip: bool = False, **extra: Any) -> dict:
    """One pair in the form :class:`PairDataset` expects.

    Non-finite keypoint coordinates (e.g. PF-PASCAL's NaN rows) are stored as
    zeros and marked invalid.
    """
    src = np.asarray(src_kps, dtype=np.float32).reshape(-1, 2)
    trg = np.asarray(trg_kps, dtype=np.float32).reshape(-1, 2)
    ok = np.ones(len(src), dtype=bool) if valid is None else np.asarray(valid, dtype=bool).copy()
    ok &= np.isfinite(src).all(1) & np.isfinite(trg).all(1)
    return dict(pair_id=pair_id, category=category, src_img_path=str(src_img_path),
                trg_img_path=str(trg_img_path), src_kps=np.nan_to_num(src),
                trg_kps=np.nan_to_num(trg), kps_valid=ok, flip=bool(flip),
                src_bbox=_box(src_bbox), trg_bbox=_box(trg_bbox), **extra)


def _box(box: Any) -> np.ndarray | None:
    return None if box is None else np.asarray(box, dtype=np.float32).reshape(4)


def require(record: dict, field: str, source: Path) -> Any:
    """``record[field]``, or an :class:`AnnotationError` naming the file and the field."""
    if field not in record:
        raise AnnotationError(f"{source}: missing field {field!r}")
    return record[field]


def points_field(record: dict, field: str, source: Path) -> np.ndarray:
    """A ``(K, 2)`` list of ``[x, y]`` from an annotation, checked."""
    value = require(record, field, source)
    try:
        points = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise AnnotationError(f"{source}: field {field!r} must be a list of [x, y] numbers, "
                              f"got {str(value)[:80]}") from err
    if points.size == 0:
        return points.reshape(0, 2)
    if points.ndim != 2 or points.shape[1] != 2:
        raise AnnotationError(f"{source}: field {field!r} must be a list of [x, y], "
                              f"got shape {points.shape}")
    return points


def box_field(record: dict, field: str, source: Path) -> np.ndarray:
    """A ``[x1, y1, x2, y2]`` box from an annotation, checked."""
    value = require(record, field, source)
    try:
        box = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise AnnotationError(f"{source}: field {field!r} must be [x1, y1, x2, y2], "
                              f"got {str(value)[:80]}") from err
    if box.shape != (4,):
        raise AnnotationError(f"{source}: field {field!r} must have 4 numbers "
                              f"[x1, y1, x2, y2], got {box.size}")
    return box


def csv_rows(path: Path, is_header: Callable[[list[str]], bool]) -> Iterator[tuple[int, list[str]]]:
    """``(line number, fields)`` of a pair list, skipping empty lines and a header row.

    Raises:
        FileNotFoundError: If ``path`` does not exist (the message names it).
        AnnotationError: If it is not UTF-8 text a CSV reader accepts.
    """
    if not path.is_file():
        raise FileNotFoundError(f"pair list '{path}' does not exist")
    with path.open(newline='', encoding='utf-8') as handle:
        try:
            rows = list(csv.reader(handle))
        except (UnicodeDecodeError, csv.Error) as err:
            raise AnnotationError(f'{path}: not a readable UTF-8 CSV file ({err})') from err
    for line, row in enumerate(rows, start=1):
        if row and not (line == 1 and is_header(row)):
            yield line, row


def parses_as(text: str, kind: type = float) -> bool:
    """Whether a CSV field parses as ``kind`` (``int`` or ``float``).

    Examples:
        >>> parses_as('3', int), parses_as('3.5', int), parses_as('3.5'), parses_as('x')
        (True, False, True, False)
    """
    try:
        kind(text)
    except ValueError:
        return False
    return True
