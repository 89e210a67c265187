"""SPair-71k (Min et al., 2019) in its official layout."""
from __future__ import annotations

import json
from pathlib import Path

from ..registry import DATASETS
from ..structures import DIFFICULTY_FIELDS
from .base import AnnotationError, PairDataset, box_field, inside_root, make_pair, \
    points_field, require
from .sources import DatasetSource, RemoteFile, register_source

#: Where SPair-71k is published and what its folder holds (publishes no checksum or size).
SPAIR_SOURCE = register_source(DatasetSource(
    name='spair', directory='SPair-71k',
    files=(RemoteFile('https://cvlab.postech.ac.kr/research/SPair-71k/data/SPair-71k.tar.gz',
                      'SPair-71k.tar.gz'),),
    layout=('JPEGImages/<category>/<name>.jpg\n'
            'PairAnnotation/{trn,val,test}/<pair>.json\n'
            'Layout/large/{trn,val,test}.txt'),
    check_paths=('JPEGImages', 'PairAnnotation', 'Layout/large/test.txt')))


@DATASETS.register_module()
class SPairDataset(PairDataset):
    """SPair-71k pairs: 18 categories, object boxes, four difficulty annotations.

    Layout under ``data_root``::

        JPEGImages/<category>/<name>.jpg
        PairAnnotation/{trn,val,test}/<pair>.json
        Layout/large/{trn,val,test}.txt      lines like 000001-2008_006481-2008_007698:aeroplane

    The split file lists the pairs; each pair's JSON gives ``src_imname``,
    ``trg_imname``, ``category``, ``src_kps`` / ``trg_kps`` (lists of
    ``[x, y]``, all visible in both images), ``src_bndbox`` / ``trg_bndbox``
    (``[x1, y1, x2, y2]``) and the difficulty flags ``viewpoint_variation``,
    ``scale_variation``, ``truncation`` and ``occlusion`` (their levels:
    :data:`~corrkit.structures.DIFFICULTY_LEVELS`). The standard split
    sizes are 53,340 / 5,384 / 12,234 pairs. Categories are the folders of
    ``JPEGImages``, so the embedded mini dataset (same format, its own
    categories) loads unchanged.

    See :class:`~corrkit.datasets.base.PairDataset` for the arguments.

    Raises:
        FileNotFoundError: If the split file is missing (named in the message).
        AnnotationError: If a pair's JSON is missing, unreadable or lacks a
            field (the message names the file and the field).
    """

    source = SPAIR_SOURCE

    def missing_message(self, root: Path) -> str:
        return (super().missing_message(root) + '\nFor the embedded mini dataset in SPair-71k '
                'format, run: python tools/make_mini_dataset.py')

    def load_pairs(self, root: Path) -> list[dict]:
        layout = root / 'Layout' / 'large' / f'{self.split}.txt'
        if not layout.is_file():
            raise FileNotFoundError(f"SPair-71k split file '{layout}' does not exist; expected "
                                    f"Layout/large/{{trn,val,test}}.txt under {root}")
        try:
            text = layout.read_text(encoding='utf-8')
        except UnicodeDecodeError as err:
            raise AnnotationError(f'{layout}: not a UTF-8 text file ({err})') from err
        names = [line.strip() for line in text.splitlines() if line.strip()]
        folders = root / 'JPEGImages'
        if folders.is_dir():
            self._metainfo['classes'] = tuple(sorted(p.name for p in folders.iterdir() if p.is_dir()))
        return [self._load_pair(root, name) for name in names]

    def _load_pair(self, root: Path, name: str) -> dict:
        # a pair name from the split file must not lead out of the annotation folder
        path = inside_root(root / 'PairAnnotation' / self.split, f'{name}.json',
                           root / 'Layout' / 'large' / f'{self.split}.txt')
        try:
            record = json.loads(path.read_text())
        except FileNotFoundError as err:
            raise AnnotationError(f"{path}: annotation file of pair {name!r} (listed in "
                                  f"Layout/large/{self.split}.txt) does not exist") from err
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise AnnotationError(f'{path}: not valid JSON ({err})') from err
        if not isinstance(record, dict):
            raise AnnotationError(f'{path}: expected a JSON object, got {type(record).__name__}')
        category = str(require(record, 'category', path))
        src_kps, trg_kps = points_field(record, 'src_kps', path), points_field(record, 'trg_kps', path)
        if len(src_kps) != len(trg_kps):
            raise AnnotationError(f"{path}: 'src_kps' has {len(src_kps)} points but 'trg_kps' "
                                  f"has {len(trg_kps)}")
        images = root / 'JPEGImages'
        flags = {}
        for field in DIFFICULTY_FIELDS:
            if field in record:
                try:
                    flags[field] = int(record[field])
                except (TypeError, ValueError) as err:
                    raise AnnotationError(f'{path}: field {field!r} must be an integer, got '
                                          f'{record[field]!r}') from err
        return make_pair(
            pair_id=name, category=category,
            src_img_path=inside_root(images, f"{category}/{require(record, 'src_imname', path)}", path),
            trg_img_path=inside_root(images, f"{category}/{require(record, 'trg_imname', path)}", path),
            src_kps=src_kps, trg_kps=trg_kps,
            src_bbox=box_field(record, 'src_bndbox', path) if 'src_bndbox' in record else None,
            trg_bbox=box_field(record, 'trg_bndbox', path) if 'trg_bndbox' in record else None,
            **flags)
