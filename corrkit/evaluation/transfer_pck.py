"""PCK of transferred keypoints against a COCO keypoints ground truth (``corrkit transfer --eval``).

A predicted point counts where the ground truth labels the keypoint (``v > 0``)
and the prediction exists (``v > 0``); it is correct when it lies within
``alpha`` times the ground-truth instance box's longer side (the box around the
labelled keypoints when the instance has no ``bbox``). PCK is the fraction of
correct points, over all points, per keypoint name, and separately for the
accepted (``v = 2``) and flagged (``v = 1``) points, so the threshold that
separates them can be judged. With several ground-truth instances of a category
in one image, the prediction is compared with the one it matches best.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..coco import KeypointInstance, KeypointsFile, read_coco_keypoints
from ..utils.fileio import atomic_path, common_folder
from ..utils.text import format_table

__all__ = ['ALPHAS', 'TransferPCK', 'evaluate_transfer', 'format_transfer_pck']

#: The thresholds reported, fractions of the instance box's longer side.
ALPHAS = (0.05, 0.1, 0.15)
GROUPS = ('all', 'accepted', 'flagged')


@dataclass
class TransferPCK:
    """The result of :func:`evaluate_transfer`.

    Attributes:
        alphas: The thresholds.
        overall: ``group → {'n': points, 'pck@α': fraction}`` for ``all``,
            ``accepted`` and ``flagged``.
        per_keypoint: ``'category/keypoint' → group → the same``.
        images: Ground-truth images matched to a prediction.
        unmatched_images: Ground-truth images labelling an evaluated category (one the
            predictions share) that have no prediction.
        missed: Points the ground truth labels that were not predicted (``v = 0``).
        errors: Every compared point's ``(category/keypoint, v, distance / box size)``
            (for choosing a threshold).
    """

    alphas: tuple[float, ...]
    overall: dict = field(default_factory=dict)
    per_keypoint: dict = field(default_factory=dict)
    images: int = 0
    unmatched_images: int = 0
    missed: int = 0
    errors: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """A JSON-ready dict (without the per-point errors)."""
        return {'alphas': list(self.alphas), 'overall': self.overall,
                'per_keypoint': self.per_keypoint, 'images': self.images,
                'unmatched_images': self.unmatched_images, 'missed': self.missed}

    def save(self, path: str | os.PathLike) -> Path:
        """Write :meth:`as_dict` as JSON (atomically) and return the path."""
        path = Path(path)
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.as_dict(), indent=1))
        return path


def _summary(distances: list[float], alphas: Sequence[float]) -> dict:
    values = np.asarray(distances, dtype=np.float64)
    out: dict = {'n': int(values.size)}
    for alpha in alphas:
        out[f'pck@{alpha:g}'] = float((values <= alpha).mean()) if values.size else None
    return out


def _box_size(instance: KeypointInstance) -> float:
    if instance.bbox is not None:
        return float(max(instance.bbox[2], instance.bbox[3]))
    pts = instance.keypoints[instance.labelled, :2]
    return float(max((pts.max(0) - pts.min(0)).max(), 1.0)) if len(pts) else 1.0


def _image_keys(coco: KeypointsFile, root: Path | None) -> dict[str, int]:
    """A matching key per image: its resolved path when the root is known, else its name."""
    out = {}
    for image in coco.images.values():
        key = os.path.realpath(root / image.file_name) if root is not None else image.file_name
        out[key] = image.id
    return out


def evaluate_transfer(predictions: str | os.PathLike, ground_truth: str | os.PathLike,
                      targets: Sequence[str | os.PathLike] | None = None,
                      gt_root: str | os.PathLike | None = None,
                      alphas: Sequence[float] = ALPHAS) -> TransferPCK:
    """PCK of a transfer's ``annotations.json`` against the targets' ground truth.

    Args:
        predictions: The transfer's ``annotations.json``.
        ground_truth: COCO keypoints of (some of) the targets, with the same categories
            (matched by name) and keypoint names.
        targets: The transfer's target paths: images are then matched by resolved
            path (the predictions' ``file_name`` are relative to the targets' common
            folder, the ground truth's to ``gt_root``). Without them, by ``file_name``.
        gt_root: Folder of the ground truth's ``file_name`` (default: its folder).
        alphas: Thresholds.

    Returns:
        A :class:`TransferPCK`.

    Raises:
        FileNotFoundError, AnnotationError: If a file cannot be read.
        ValueError: If no category of the predictions is in the ground truth, or a
            category's keypoint names differ between the two files.
    """
    pred, gt = read_coco_keypoints(predictions), read_coco_keypoints(ground_truth)
    result = TransferPCK(tuple(alphas))
    gt_names = {c.name: c for c in gt.categories.values()}
    shared = [c for c in pred.categories.values() if c.name in gt_names]
    if not shared:
        raise ValueError(f"no category of '{pred.path}' "
                         f'({sorted(c.name for c in pred.categories.values())}) is in '
                         f"'{gt.path}' ({sorted(gt_names)})")
    pred_root = None if targets is None else common_folder([Path(t) for t in targets])
    gt_keys = _image_keys(gt, None if targets is None else
                          Path(gt_root) if gt_root is not None else gt.path.parent)
    pred_keys = _image_keys(pred, pred_root)
    matched = {pred_keys[k]: gt_keys[k] for k in pred_keys if k in gt_keys}
    result.images = len(set(matched.values()))
    # only images the evaluated categories label: a shared ground truth of many
    # categories does not count its other images as missed
    evaluated = {gt_names[c.name].id for c in shared}
    relevant = {a.image_id for a in gt.annotations
                if a.category_id in evaluated and a.labelled.any()}
    result.unmatched_images = len(relevant - set(matched.values()))
    groups: dict[str, list[float]] = {g: [] for g in GROUPS}
    per_kp: dict[str, dict[str, list[float]]] = {}
    for ann in pred.annotations:
        category = pred.categories[ann.category_id]
        if ann.image_id not in matched or category.name not in gt_names:
            continue
        gt_cat = gt_names[category.name]
        if tuple(gt_cat.keypoints) != tuple(category.keypoints):
            raise ValueError(f"category {category.name!r}: the keypoint names differ between "
                             f"'{pred.path}' and '{gt.path}'")
        candidates = [g for g in gt.instances_of(matched[ann.image_id])
                      if g.category_id == gt_cat.id and g.labelled.any()]
        if not candidates:
            continue
        best = max(candidates, key=lambda g: _match(ann, g, max(alphas)))
        size = _box_size(best)
        both = best.labelled & ann.labelled
        result.missed += int((best.labelled & ~ann.labelled).sum())
        distance = np.linalg.norm(ann.keypoints[:, :2] - best.keypoints[:, :2], axis=1) / size
        for k in np.flatnonzero(both):
            v = int(ann.keypoints[k, 2])
            name = f'{category.name}/{category.keypoints[k]}'
            result.errors.append((name, v, float(distance[k])))
            for group in ('all', 'accepted' if v == 2 else 'flagged'):
                groups[group].append(float(distance[k]))
                per_kp.setdefault(name, {g: [] for g in GROUPS})[group].append(float(distance[k]))
    result.overall = {g: _summary(d, alphas) for g, d in groups.items()}
    result.per_keypoint = {name: {g: _summary(d, alphas) for g, d in by_group.items()}
                           for name, by_group in sorted(per_kp.items())}
    return result


def _match(pred: KeypointInstance, gt: KeypointInstance, alpha: float) -> tuple[int, float]:
    """How well a prediction matches an instance: its points within ``alpha``, then (for
    instances close enough to tie) its mean distance, in box sizes."""
    both = pred.labelled & gt.labelled
    if not both.any():
        return 0, -np.inf
    distance = np.linalg.norm(pred.keypoints[both, :2] - gt.keypoints[both, :2],
                              axis=1) / _box_size(gt)
    return int((distance <= alpha).sum()), -float(distance.mean())


def format_transfer_pck(result: TransferPCK) -> str:
    """The overall table (points, PCK per alpha, for all / accepted / flagged points)."""
    header = ['points', 'n'] + [f'PCK@{a:g}' for a in result.alphas]
    rows = []
    for group in GROUPS:
        summary = result.overall.get(group, {'n': 0})
        rows.append([group, summary['n']] + [
            '-' if summary.get(f'pck@{a:g}') is None else f"{100 * summary[f'pck@{a:g}']:.1f}"
            for a in result.alphas])
    note = (f'{result.images} ground-truth images matched, {result.unmatched_images} without a '
            f'prediction, {result.missed} labelled points not predicted')
    return format_table(header, rows) + '\n' + note
