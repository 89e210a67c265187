"""The files of a keypoint transfer, written from its finished parts.

- ``annotations.json``: a complete COCO keypoints file (the references'
  categories, one ``images`` entry per target with its file name relative to the
  targets' common folder and its size, one annotation per target and category
  with ``keypoints``, ``num_keypoints``, ``bbox``, ``score`` and
  ``keypoint_scores``), for an annotation tool to import and correct;
- ``results.json``: COCO's results list (``image_id``, ``category_id``,
  ``keypoints``, ``score``) for COCO tooling;
- ``keypoints.csv``: one row per target keypoint;
- ``gallery.html`` (asked for): the review page, self-contained up to
  :data:`INLINE_GALLERY_ITEMS` targets, its images in ``gallery_files/`` past that;
- ``summary.json``: counts and the targets that failed.

A keypoint scoring ``min_score`` or more is accepted (``v = 2``), one below it
flagged (``v = 1``, kept where it was predicted), one no reference labels is
absent (``v = 0``, at ``(0, 0)`` as COCO writes it). Every file is written
atomically; the threshold is applied here, so a new ``--min-score`` rewrites
the files without matching anything again.
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np

from ..coco import CocoImage, KeypointsFile, keypoints_document
from ..utils.fileio import atomic_path
from .collection import Reference, TransferReport, relative_name

__all__ = ['INLINE_GALLERY_ITEMS', 'read_part', 'write_collection']

#: Up to this many targets the gallery is one self-contained file; past it, its images go
#: to ``gallery_files/`` beside it.
INLINE_GALLERY_ITEMS = 200


def read_part(path: Path, references: int | None = None) -> dict | None:
    """A finished target's part, or None (missing, unreadable, or not a well-formed part:
    a truncated, foreign or edited file is transferred again rather than trusted).

    Args:
        path: ``parts/<id>.json``.
        references: The number of references, to check the part's reference indices.
    """
    try:
        part = json.loads(path.read_text(encoding='utf-8'))
        height, width = part['size']
        assert int(height) > 0 and int(width) > 0 and isinstance(part['inputs'], dict)
        for cat_key, result in part['categories'].items():
            int(cat_key)
            points = np.asarray(result['points'], dtype=np.float64)
            count = len(result['labelled'])
            assert points.shape == (count, 2) and np.isfinite(points).all()
            assert np.asarray(result['scores'], dtype=np.float64).shape == (count,)
            best = result['best_reference']
            assert isinstance(best, int) and best >= 0
            assert references is None or best < references
    except (OSError, ValueError, KeyError, TypeError, AttributeError, AssertionError):
        return None
    return part


def _status(scores: np.ndarray, labelled: np.ndarray, min_score: float) -> np.ndarray:
    """COCO visibility flags: 2 accepted, 1 flagged, 0 not predicted."""
    return np.where(labelled, np.where(scores >= min_score, 2, 1), 0)


def _bbox(points: np.ndarray, status: np.ndarray) -> list[float]:
    """``[x, y, w, h]`` around the predicted points (at least a pixel wide)."""
    shown = points[status > 0]
    if not len(shown):
        return [0.0, 0.0, 0.0, 0.0]
    low, high = shown.min(0), shown.max(0)
    return [round(float(low[0]), 2), round(float(low[1]), 2),
            round(max(float(high[0] - low[0]), 1.0), 2),
            round(max(float(high[1] - low[1]), 1.0), 2)]


def _annotation(image_id: int, category_id: int, result: dict, min_score: float) -> dict:
    points = np.asarray(result['points'], dtype=np.float64).reshape(-1, 2)
    scores = np.asarray(result['scores'], dtype=np.float64)
    labelled = np.asarray(result['labelled'], dtype=bool)
    status = _status(scores, labelled, min_score)
    triplets = []
    for (x, y), v in zip(points, status):
        triplets += [round(float(x), 2), round(float(y), 2), int(v)] if v else [0, 0, 0]
    instance_score = float(scores[labelled].mean()) if labelled.any() else 0.0
    box = _bbox(points, status)
    return {'image_id': image_id, 'category_id': category_id, 'keypoints': triplets,
            'num_keypoints': int((status > 0).sum()), 'bbox': box,
            'area': round(box[2] * box[3], 2), 'iscrowd': 0,
            'score': round(instance_score, 4),
            'keypoint_scores': [round(float(s), 4) if v else 0.0
                                for s, v in zip(scores, status)]}


def write_collection(out: Path, coco: KeypointsFile, references: Sequence[Reference],
                     targets: Sequence[Path], ids: Sequence[str], root: Path,
                     min_score: float, html: bool, report: TransferReport) -> None:
    """Write the collection's files from ``out/parts`` (see the module's description).

    Targets without a finished part (failed, or not transferred yet) are left out.
    Updates ``report``'s ``accepted``, ``flagged`` and ``paths``.
    """
    categories = {ref.category.id: ref.category for ref in references}
    images, annotations, rows, gallery = [], [], [], []
    for number, (target, target_id) in enumerate(zip(targets, ids), 1):
        part = read_part(out / 'parts' / f'{target_id}.json', len(references))
        if part is None:
            continue
        height, width = part['size']
        name = relative_name(target, root)
        images.append(CocoImage(number, name, width, height))
        for cat_key, result in part['categories'].items():
            category = categories.get(int(cat_key))
            if category is None:
                continue
            ann = _annotation(number, category.id, result, min_score)
            annotations.append(ann)
            status = np.asarray(ann['keypoints'][2::3])
            report.accepted += int((status == 2).sum())
            report.flagged += int((status == 1).sum())
            for k, kp_name in enumerate(category.keypoints):
                if status[k]:
                    x, y = ann['keypoints'][3 * k:3 * k + 2]
                    rows.append([_cell(name), _cell(category.name), _cell(kp_name), x, y,
                                 ann['keypoint_scores'][k], int(status[k] == 2)])
            if html:
                gallery.append((target, name, category, result, status, ann['score']))
    doc = keypoints_document(images, categories.values(), annotations,
                             info={'description': f'keypoints transferred by corrkit from '
                                                  f"'{coco.path.name}'",
                                   'min_score': min_score})
    results = [{'image_id': a['image_id'], 'category_id': a['category_id'],
                'keypoints': a['keypoints'], 'score': a['score']} for a in annotations]
    paths = {'annotations': out / 'annotations.json', 'results': out / 'results.json',
             'keypoints': out / 'keypoints.csv', 'summary': out / 'summary.json'}
    _write_json(paths['annotations'], doc)
    _write_json(paths['results'], results)
    with atomic_path(paths['keypoints']) as tmp:
        with open(tmp, 'w', newline='', encoding='utf-8') as f:
            writer = csv.writer(f)
            writer.writerow(['target', 'category', 'keypoint', 'x', 'y', 'score', 'accepted'])
            writer.writerows(rows)
    if html:
        paths['gallery'] = _write_gallery(out / 'gallery.html', gallery, references, min_score)
    _write_json(paths['summary'], {
        'targets': report.targets, 'written': len(images), 'accepted': report.accepted,
        'flagged': report.flagged, 'min_score': min_score, 'failed': report.failed})
    report.paths = paths


def _cell(text: str) -> str:
    """A CSV text cell a spreadsheet shows as text: names come from users' files, and a
    cell starting with ``=``, ``+``, ``-`` or ``@`` would run as a formula.

    Examples:
        >>> _cell('=SUM(A1)'), _cell('left_eye')
        ("'=SUM(A1)", 'left_eye')
    """
    return "'" + text if text[:1] in ('=', '+', '-', '@', '\t', '\r') else text


def _write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False))


def _write_gallery(path: Path, entries: list, references: Sequence[Reference],
                   min_score: float) -> Path:
    from ..visualization.gallery import GalleryItem, write_gallery
    items = []
    for target, name, category, result, status, score in entries:
        ref = references[result['best_reference']]
        scores = np.asarray(result['scores'], dtype=np.float64)
        items.append(GalleryItem(
            target=target, title=name, category=category.name,
            keypoints=np.asarray(result['points'], dtype=np.float64).reshape(-1, 2),
            scores=np.where(status > 0, scores, math.nan), status=status.astype(int),
            score=score, reference=ref.image, reference_keypoints=ref.keypoints[:, :2],
            reference_visible=ref.labelled))
    categories = {ref.category.name: ref.category for ref in references}
    # past a few hundred targets one self-contained page grows too large for a browser
    thumbnails = 'inline' if len(items) <= INLINE_GALLERY_ITEMS else 'folder'
    return write_gallery(path, items, {n: c.keypoints for n, c in categories.items()},
                         {n: c.skeleton for n, c in categories.items()}, min_score,
                         thumbnails=thumbnails)

