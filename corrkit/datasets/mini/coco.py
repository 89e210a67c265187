"""The mini dataset as COCO keypoints: one category per photo, one image per view.

Every pair of the mini dataset joins a photo (``<photo>_00.jpg``) and one warped
view of it, and names the photo's keypoints it keeps (``kps_ids``). Written as
COCO keypoints, a photo is a category whose keypoints are the photo's corners
(``k00``, ``k01``, ...); the photo and each view are images with one instance
each, its keypoints exact (mapped through the warp) and ``v = 0`` where the
view lost the point (outside the image, occluded). This is a collection with
exact ground truth for ``corrkit transfer``: label a few views, transfer to the
others, compare with this file.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Sequence

from ...errors import AnnotationError, DatasetNotFoundError
from ...utils.fileio import atomic_path

__all__ = ['FIRST_TARGET', 'mini_dataset_coco', 'view_number', 'write_mini_coco']

#: Views before it are references, views from it on targets (every K <= 5 scores the same
#: targets).
FIRST_TARGET = 6


def _views(root: Path, split: str) -> dict[str, dict[str, tuple]]:
    """photo → image name → (keypoint ids, points, box x1y1x2y2, size), from the pair files."""
    folder = root / 'PairAnnotation' / split
    if not folder.is_dir():
        raise DatasetNotFoundError(f"no mini dataset split {split!r} under '{root}' "
                                   f'(make it with tools/make_mini_dataset.py)')
    views: dict[str, dict[str, tuple]] = {}
    for path in sorted(folder.glob('*.json')):
        record = json.loads(path.read_text())
        photo = record['category']
        for side, other in (('src', 'trg'), ('trg', 'src')):
            name = record[f'{side}_imname']
            views.setdefault(photo, {})[name] = (record['kps_ids'], record[f'{side}_kps'],
                                                record[f'{side}_bndbox'],
                                                record[f'{side}_imsize'])
    return views


def mini_dataset_coco(root: str | os.PathLike, splits: Sequence[str] = ('test',)) -> dict:
    """The mini dataset's photos and views as one COCO keypoints document.

    Args:
        root: The mini dataset (``tools/make_mini_dataset.py``).
        splits: Which splits' photos (``trn``, ``val``, ``test``).

    Returns:
        A COCO keypoints dict: ``file_name`` relative to ``root``
        (``JPEGImages/<photo>/<name>.jpg``), one category per photo, one
        annotation per image with its box.

    Raises:
        DatasetNotFoundError: If a split is missing.
        AnnotationError: If two pairs disagree on a view's keypoint.
    """
    root = Path(root)
    images, categories, annotations = [], [], []
    for split in splits:
        for photo, views in sorted(_views(root, split).items()):
            count = 1 + max(i for ids, *_ in views.values() for i in ids)
            cat_id = len(categories) + 1
            categories.append({'id': cat_id, 'name': photo, 'supercategory': split,
                               'keypoints': [f'k{i:02d}' for i in range(count)],
                               'skeleton': []})
            for name, (ids, points, box, size) in sorted(views.items()):
                image_id = len(images) + 1
                images.append({'id': image_id, 'file_name': f'JPEGImages/{photo}/{name}',
                               'width': size[0], 'height': size[1]})
                flat = [0.0] * (3 * count)
                for i, (x, y) in zip(ids, points):
                    if flat[3 * i + 2] and abs(flat[3 * i] - x) + abs(flat[3 * i + 1] - y) > 1e-3:
                        raise AnnotationError(f'{root}: pairs disagree on keypoint {i} of {name}')
                    flat[3 * i:3 * i + 3] = [round(x, 3), round(y, 3), 2]
                annotations.append({'id': len(annotations) + 1, 'image_id': image_id,
                                    'category_id': cat_id, 'keypoints': flat,
                                    'num_keypoints': len(ids),
                                    'bbox': [box[0], box[1], box[2] - box[0], box[3] - box[1]],
                                    'iscrowd': 0})
    return {'images': images, 'categories': categories, 'annotations': annotations}


def view_number(file_name: str) -> int:
    """The view a mini-dataset file name is (``chelsea_07.jpg`` → 7; the photo is 0).

    Examples:
        >>> view_number('JPEGImages/chelsea/chelsea_07.jpg')
        7
    """
    match = re.search(r'_(\d+)\.\w+$', file_name)
    return int(match.group(1)) if match else 0


def write_mini_coco(root: str | os.PathLike, splits: Sequence[str] = ('trn', 'val', 'test'),
                    references: int = 5) -> Path:
    """Write the mini dataset as a keypoint-transfer collection with exact ground truth.

    Into ``root``: ``transfer_ground_truth.json`` (:func:`mini_dataset_coco`),
    ``transfer_references.json`` (views 1 to ``references`` of each photo) and
    ``transfer_targets/<photo>.txt`` listing each photo's targets (views from
    :data:`FIRST_TARGET` on), ready for ``corrkit transfer --refs
    transfer_references.json --category <photo> transfer_targets/<photo>.txt
    --eval transfer_ground_truth.json``.

    Args:
        root: The mini dataset.
        splits: Which splits' photos.
        references: Labelled views per photo (1 to ``FIRST_TARGET - 1``).

    Returns:
        The references file.

    Raises:
        ValueError: If ``references`` is out of range.
        DatasetNotFoundError: If a split is missing.
    """
    if not 1 <= references < FIRST_TARGET:
        raise ValueError(f'references must be 1 to {FIRST_TARGET - 1}, got {references}')
    root = Path(root)
    doc = mini_dataset_coco(root, splits)
    lists = root / 'transfer_targets'
    lists.mkdir(exist_ok=True)
    chosen = {i['id'] for i in doc['images'] if 1 <= view_number(i['file_name']) <= references}
    refs = {'images': [i for i in doc['images'] if i['id'] in chosen],
            'categories': doc['categories'],
            'annotations': [a for a in doc['annotations'] if a['image_id'] in chosen]}
    for name, data in (('transfer_ground_truth.json', doc), ('transfer_references.json', refs)):
        with atomic_path(root / name) as tmp:
            tmp.write_text(json.dumps(data))
    for category in doc['categories']:
        photo = category['name']
        lines = [f"../{i['file_name']}" for i in doc['images']
                 if i['file_name'].split('/')[1] == photo and
                 view_number(i['file_name']) >= FIRST_TARGET]
        with atomic_path(lists / f'{photo}.txt') as tmp:
            tmp.write_text('\n'.join(lines) + '\n')
    return root / 'transfer_references.json'
