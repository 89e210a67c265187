"""Keypoint transfer over an image collection: label a few images, get keypoints on the others.

Behind ``corrkit transfer``. Each reference instance and each target image goes
through the backbone once per run (``encode``), every reference is matched to
every target (``match_points``), each transferred point is matched back to its
reference and scored by how close it lands (:func:`~corrkit.ops.cycle_score`),
the references' candidates are fused (:func:`~corrkit.ops.fuse_candidates`) and
points below ``min_score`` are flagged (COCO ``v = 1``) rather than dropped.

Targets are streamed in batches (reference features are kept); each finished
target is written atomically as ``parts/<id>.json`` recording what produced it
(target, references, model, precision, fusion), so a rerun skips what is done
and redoes what changed. The collection's files (``annotations.json``,
``results.json``, ``keypoints.csv``, ``gallery.html``) are then written from the
parts (:mod:`corrkit.apis.transfer_outputs`). Under ``torchrun`` each rank takes
its share of the targets and rank 0 writes the collection's files.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ..errors import USER_ERRORS
from ..models.features import ImageFeatures
from ..ops.fusion import FUSIONS, agreement_score, cycle_score, fuse_candidates
from ..utils.fileio import atomic_path, common_folder, sha256_of
from ..utils.image import load_image
from ..utils.text import first_line
from .batch import model_fingerprint, recorded_inputs, remove_stale_temporaries
from .collection import Reference, TransferReport, inside_image, read_references, target_ids
from .feature_store import FeatureStore
from .inference import encode_images
from .transfer_outputs import read_part, write_collection

__all__ = ['DEFAULT_MIN_SCORE', 'TransferReport', 'transfer_keypoints']

#: Points scoring below it are flagged (COCO ``v = 1``): where flagged points become as
#: likely wrong as right on the mini collection (tools/analysis/transfer_check.py; the
#: transfer guide says how to choose yours with ``--eval``).
DEFAULT_MIN_SCORE = 0.3
#: Pairs matched per ``match_points`` call (bounds the memory of correlation matchers).
PAIRS_PER_CALL = 8


class _Encoder:
    """Images to features, each once, through the feature cache when there is one."""

    def __init__(self, model: torch.nn.Module, precision: str, store: FeatureStore | None):
        self.model, self.precision, self.store = model, precision, store
        self.mirrored = bool(model.mirrors_source)
        self.encoded = 0

    def __call__(self, images: Sequence[Image.Image], shas: Sequence[str],
                 crops: Sequence[object]) -> ImageFeatures:
        dtype, device = next(self.model.parameters()).dtype, next(self.model.parameters()).device
        found: dict[int, ImageFeatures] = {}
        keys = [None] * len(images)
        if self.store is not None:
            for i, (sha, crop) in enumerate(zip(shas, crops)):
                keys[i] = self.store.key(sha, crop, self.mirrored)
                hit = self.store.load(keys[i], dtype, device)
                if hit is not None and hit.frames[0].size == (images[i].height, images[i].width):
                    found[i] = hit
                elif hit is not None:  # another image's entry under this key: not a hit
                    self.store.hits -= 1
        missing = [i for i in range(len(images)) if i not in found]
        if missing:
            feats = encode_images(self.model, [images[i] for i in missing], self.precision,
                                  mirrored=self.mirrored)
            self.encoded += len(missing) * (2 if self.mirrored else 1)
            for j, i in enumerate(missing):
                found[i] = feats[j]
                if self.store is not None:
                    self.store.save(keys[i], found[i])
        return ImageFeatures.cat([found[i] for i in range(len(images))])


def _encode_references(refs: Sequence[Reference], shas: dict[Path, str], encoder: _Encoder,
                       batch_size: int) -> tuple[ImageFeatures, list[Reference]]:
    """Every reference's region, encoded in batches; each image file decoded once.

    Returns the features and the references with their regions clipped to their images.
    """
    images: dict[Path, Image.Image] = {}
    parts, checked = [], []
    for start in range(0, len(refs), batch_size):
        crops, keys, regions = [], [], []
        for ref in refs[start:start + batch_size]:
            if ref.image not in images:
                images[ref.image] = load_image(ref.image)
            image = images[ref.image]
            ref = _checked_reference(ref, image)
            crops.append(image if ref.crop is None else image.crop(ref.crop))
            keys.append(shas[ref.image])
            regions.append(ref.crop)
            checked.append(ref)
        parts.append(encoder(crops, keys, regions))
    return ImageFeatures.cat(parts), checked


def _clip(crop: tuple[int, int, int, int], image: Image.Image) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = crop
    return (max(x0, 0), max(y0, 0), min(x1, image.width), min(y1, image.height))


def _checked_reference(ref: Reference, image: Image.Image) -> Reference:
    """The reference with its points and region inside its image, and its size at least a
    tenth of the image's when it has no box.

    Raises:
        AnnotationError: If a labelled keypoint lies outside the image.
    """
    keypoints = inside_image(ref.keypoints, (image.height, image.width),
                             f"reference '{ref.image}' (annotations[{ref.annotation}])")
    crop = None if ref.crop is None else _clip(ref.crop, image)
    scale = ref.scale if ref.crop is not None else max(ref.scale,
                                                       0.1 * max(image.width, image.height))
    return replace(ref, keypoints=keypoints, crop=crop, scale=scale)


def _reference_points(refs: Sequence[Reference]) -> torch.Tensor:
    """``(R, K, 2)`` each reference's points in its region's pixels (unlabelled ones at the
    region's centre: matched, never used)."""
    rows = []
    for ref in refs:
        points = ref.crop_points()
        centre = points[ref.labelled].mean(0)
        points[~ref.labelled] = centre
        rows.append(torch.as_tensor(points, dtype=torch.float32))
    return torch.stack(rows)


@dataclass
class _Candidates:
    """One category's candidates for one target: ``(R, K)`` per reference and keypoint."""

    points: torch.Tensor  # (R, K, 2) target pixels
    scores: torch.Tensor  # (R, K)
    valid: torch.Tensor  # (R, K) bool


def _match_category(model: torch.nn.Module, ref_feats: ImageFeatures, ref_points: torch.Tensor,
                    ref_scales: torch.Tensor, ref_valid: torch.Tensor,
                    trg_feats: ImageFeatures) -> list[_Candidates]:
    """Every reference of a category against every target: forward, backward, scores."""
    n_ref, n_trg = len(ref_feats), len(trg_feats)
    pairs = [(t, r) for t in range(n_trg) for r in range(n_ref)]
    points = torch.empty(n_trg, n_ref, ref_points.shape[1], 2)
    scores = torch.empty(n_trg, n_ref, ref_points.shape[1])
    # the network runs under autocast, the matching in fp32: bf16 holds pixel coordinates
    # only in steps of 4 px past 512 (8 px past 1024)
    ref_feats, trg_feats = _full_precision(ref_feats), _full_precision(trg_feats)
    plain_refs, plain_trgs = ref_feats.without_mirrored(), trg_feats.without_mirrored()
    for start in range(0, len(pairs), PAIRS_PER_CALL):
        chunk = pairs[start:start + PAIRS_PER_CALL]
        t_idx, r_idx = [t for t, _ in chunk], [r for _, r in chunk]
        start_pts = ref_points[r_idx].to(ref_feats.maps[0].device)
        fwd = model.match_points(ref_feats[r_idx], start_pts, plain_trgs[t_idx])
        found = _clamp_inside(fwd.trg_kps.float(), trg_feats, t_idx)
        back = model.match_points(trg_feats[t_idx], found, plain_refs[r_idx])
        score = cycle_score(start_pts.float(), back.trg_kps.float(),
                            ref_scales[r_idx][:, None].to(start_pts.device),
                            fwd.confidence.float())
        for i, (t, r) in enumerate(chunk):
            points[t, r], scores[t, r] = found[i].cpu(), score[i].cpu()
    return [_Candidates(points[t], scores[t], ref_valid) for t in range(n_trg)]


def _full_precision(feats: ImageFeatures) -> ImageFeatures:
    """The features in fp32 (as computed under autocast they may be bf16 or fp16)."""
    if all(m.dtype == torch.float32 for m in feats.maps):
        return feats
    return ImageFeatures(tuple(m.float() for m in feats.maps), feats.frames,
                         None if feats.mirrored is None
                         else tuple(m.float() for m in feats.mirrored))


def _clamp_inside(points: torch.Tensor, feats: ImageFeatures, index: Sequence[int]
                  ) -> torch.Tensor:
    """Points kept within their images (a match never leaves the target)."""
    out = points.clone()
    for i, t in enumerate(index):
        height, width = feats.frames[t].size
        out[i, :, 0] = out[i, :, 0].clamp(-0.5, width - 0.5)
        out[i, :, 1] = out[i, :, 1].clamp(-0.5, height - 0.5)
    return out


def _fuse(cands: _Candidates, size: tuple[int, int], fusion: str) -> dict:
    """A target's fused points for one category, their scores and its best reference."""
    points, scores, valid = (t.T if t.dim() == 2 else t.transpose(0, 1)
                             for t in (cands.points, cands.scores, cands.valid))
    fused = fuse_candidates(points, scores, valid, fusion)  # (K, 2)
    known = ~torch.isnan(fused[:, 0])
    floor = 0.1 * max(size)
    extent = (fused[known].amax(0) - fused[known].amin(0)).max().item() if known.sum() > 1 else 0
    scale = torch.tensor(max(extent, floor))
    score = agreement_score(points, scores, valid, torch.nan_to_num(fused), scale)
    ref_means = [(s[v].mean().item() if v.any() else -1.0)
                 for s, v in zip(cands.scores, cands.valid)]
    return {'points': torch.nan_to_num(fused).tolist(), 'scores': score.tolist(),
            'labelled': known.tolist(), 'best_reference': int(np.argmax(ref_means)),
            'candidates': cands.points.tolist(), 'candidate_scores': cands.scores.tolist()}


def _reference_hashes(refs: Sequence[Reference]) -> dict[Path, str]:
    """Each reference image's SHA-256, each file read once (the record and the cache keys
    use the same digests)."""
    shas: dict[Path, str] = {}
    for ref in refs:
        if ref.image not in shas:
            if not ref.image.is_file():
                raise FileNotFoundError(f"reference image '{ref.image}' does not exist")
            shas[ref.image] = sha256_of(ref.image)
    return shas


def _reference_inputs(refs_path: Path, shas: dict[Path, str], category: str | None,
                      margin: float) -> dict:
    """What the references contribute to a target's result."""
    return {'file': os.fspath(refs_path), 'sha256': sha256_of(refs_path),
            'images': sorted(set(shas.values())), 'category': category, 'margin': margin}


def _progress_bar(total: int):
    from mmengine.utils import ProgressBar  # done/total, targets per second, ETA
    return ProgressBar(total, file=sys.stderr)


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def transfer_keypoints(model: torch.nn.Module, refs: str | os.PathLike,
                       targets: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                       refs_root: str | os.PathLike | None = None, category: str | None = None,
                       min_score: float = DEFAULT_MIN_SCORE, fusion: str = 'geometric_median',
                       margin: float = 0.1, precision: str = 'fp32', batch_size: int = 8,
                       feature_cache: str | os.PathLike | None = None,
                       cache_dtype: str = 'float32', html: bool = False,
                       progress: bool = True,
                       on_error: Callable[[str, str], None] | None = None,
                       rank: int = 0, world_size: int = 1) -> TransferReport:
    """Transfer the references' keypoints to every target and write the collection's files.

    Args:
        model: A matcher from :func:`~corrkit.apis.init_matcher` (either family).
        refs: COCO keypoints file of the references.
        targets: Target image paths (:func:`~corrkit.apis.collection.read_targets`
            expands folders, lists and COCO files).
        out_dir: Results folder: ``annotations.json``, ``results.json``,
            ``keypoints.csv``, ``gallery.html`` (with ``html``), ``parts/``.
        refs_root: Folder of the references' ``file_name`` (default: ``refs``' folder).
        category: Only this category's references.
        min_score: Points scoring below it are flagged (``v = 1``).
        fusion: How the references' candidates are combined (:data:`~corrkit.ops.fusion.FUSIONS`).
        margin: Reference boxes grow by this fraction of their longer side.
        precision: ``'fp32'``, or ``'bf16'`` / ``'fp16'``: the backbone runs under
            autocast; the matching runs in fp32.
        batch_size: Targets encoded per backbone call (memory is bounded by it).
        feature_cache: Folder of features kept between runs
            (:class:`~corrkit.apis.feature_store.FeatureStore`).
        cache_dtype: How the feature cache stores maps (``'float32'``, ``'float16'``).
        html: Also write ``gallery.html``, the review page.
        progress: Show a progress bar with the time left (stderr).
        on_error: Called as ``on_error(target_id, message)`` for a target that fails.
        rank: This process's rank (``torchrun``): it takes targets ``rank::world_size``.
        world_size: Number of processes; rank 0 writes the collection's files after
            every rank is done (``torch.distributed`` barrier).

    Returns:
        A :class:`TransferReport`.

    Raises:
        FileNotFoundError, AnnotationError: If the references cannot be read.
        ValueError: If ``fusion``, ``batch_size`` or ``min_score`` is invalid, or there
            is no target.
    """
    if fusion not in FUSIONS:
        raise ValueError(f'unknown fusion {fusion!r}; choose one of {list(FUSIONS)}')
    if batch_size < 1:
        raise ValueError(f'batch_size must be at least 1, got {batch_size}')
    if not targets:
        raise ValueError('transfer_keypoints needs at least one target image')
    if not 0 <= min_score <= 1:  # NaN fails too
        raise ValueError(f'min_score must be a score from 0 to 1, got {min_score}')
    refs_path = Path(refs)
    coco, references = read_references(refs_path, refs_root, category, margin)
    targets = [Path(t) for t in targets]
    root = common_folder(targets)
    ids = target_ids(targets, root)
    distributed = world_size > 1
    if distributed and not (torch.distributed.is_available() and
                            torch.distributed.is_initialized()):
        raise ValueError(f'world_size={world_size} needs an initialised torch.distributed '
                         f'process group (torchrun with --launcher pytorch)')
    out, parts = Path(out_dir), Path(out_dir) / 'parts'
    parts.mkdir(parents=True, exist_ok=True)
    if rank == 0:  # process ids name writers of this machine only: one rank clears
        remove_stale_temporaries(parts)
        for stale in parts.glob('rank*.status'):
            stale.unlink(missing_ok=True)  # records of an earlier run
    if distributed:
        torch.distributed.barrier()
    report = TransferReport(targets=len(targets))

    def fail(target_id: str, err: BaseException) -> None:
        message = first_line(err) or type(err).__name__
        report.failed[target_id] = message
        # an earlier result of this target no longer belongs to its inputs
        (parts / f'{target_id}.json').unlink(missing_ok=True)
        if on_error is not None:
            on_error(target_id, message)

    mine = list(range(rank, len(targets), world_size))
    ref_shas = _reference_hashes(references)
    shared = {'references': _reference_inputs(refs_path, ref_shas, category, margin),
              'model': model_fingerprint(model), 'precision': precision, 'fusion': fusion}
    todo = []
    for i in mine:
        try:
            if not targets[i].is_file():
                raise FileNotFoundError(f"target '{targets[i]}' does not exist")
            inputs = {'target': {'path': os.fspath(targets[i]), 'sha256': sha256_of(targets[i])},
                      **shared}
        except USER_ERRORS as err:
            fail(ids[i], err)
            continue
        recorded = recorded_inputs(parts / f'{ids[i]}.json')
        if recorded == inputs and read_part(parts / f'{ids[i]}.json', len(references)):
            report.skipped.append(ids[i])
            continue
        if recorded is not None:
            report.replaced.append(ids[i])
        todo.append((i, inputs))
    store = None if feature_cache is None else FeatureStore(
        feature_cache, shared['model'], precision, tuple(model.input_size), cache_dtype)
    encoder = _Encoder(model, precision, store)
    if todo:
        _transfer(model, references, ref_shas, targets, ids, todo, parts, encoder, fusion,
                  batch_size, report, fail, progress)
    report.encoded = encoder.encoded
    report.cache_hits = 0 if store is None else store.hits
    _write_rank_record(parts, rank, report)
    if distributed:
        torch.distributed.barrier()
    if rank == 0:
        for other in range(1, world_size):
            _merge_rank_record(report, parts, other)
        write_collection(out, coco, references, targets, ids, root, min_score, html, report)
    return report


@torch.inference_mode()
def _transfer(model, references, ref_shas, targets, ids, todo, parts, encoder, fusion,
              batch_size, report, fail, progress) -> None:
    ref_feats, references = _encode_references(references, ref_shas, encoder, batch_size)
    by_category: dict[int, list[int]] = {}
    for r, ref in enumerate(references):
        by_category.setdefault(ref.category.id, []).append(r)
    groups = {}  # category → its references' features, points, sizes, labelled keypoints
    for cat_id, members in by_category.items():
        chosen = [references[m] for m in members]
        groups[cat_id] = (ref_feats[members], _reference_points(chosen),
                          torch.tensor([ref.scale for ref in chosen]),
                          torch.as_tensor(np.stack([ref.labelled for ref in chosen])))
    bar = _progress_bar(len(todo)) if progress else None
    for batch in _batches(todo, batch_size):
        loaded = []
        for i, inputs in batch:
            try:
                loaded.append((i, inputs, load_image(targets[i])))
            except USER_ERRORS as err:
                fail(ids[i], err)
        if loaded:
            trg_feats = encoder([image for _, _, image in loaded],
                                [inputs['target']['sha256'] for _, inputs, _ in loaded],
                                [None] * len(loaded))
            results: list[dict] = [{} for _ in loaded]
            for cat_id, members in by_category.items():
                cands = _match_category(model, *groups[cat_id], trg_feats)
                for j, (_, _, image) in enumerate(loaded):
                    fused = _fuse(cands[j], (image.height, image.width), fusion)
                    fused['best_reference'] = members[fused['best_reference']]
                    fused['references'] = members
                    results[j][str(cat_id)] = fused
            for (i, inputs, image), result in zip(loaded, results):
                _write_part(parts / f'{ids[i]}.json', targets[i], image, inputs, result)
                report.done.append(ids[i])
        if bar is not None:
            for _ in batch:
                bar.update()
    if bar is not None:
        sys.stderr.write('\n')


def _write_part(path: Path, target: Path, image: Image.Image, inputs: dict,
                categories: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({'target': os.fspath(target),
                                   'size': [image.height, image.width],
                                   'categories': categories, 'inputs': inputs}))


def _write_rank_record(parts: Path, rank: int, report: TransferReport) -> None:
    """What this rank did, for rank 0's report (written before the barrier)."""
    with atomic_path(parts / f'rank{rank}.status') as tmp:
        tmp.write_text(json.dumps({'failed': report.failed, 'done': report.done,
                                   'skipped': report.skipped, 'replaced': report.replaced,
                                   'encoded': report.encoded,
                                   'cache_hits': report.cache_hits}))


def _merge_rank_record(report: TransferReport, parts: Path, rank: int) -> None:
    """Add another rank's record to rank 0's report (a missing record adds nothing)."""
    try:
        record = json.loads((parts / f'rank{rank}.status').read_text())
        report.failed.update(record['failed'])
        for key in ('done', 'skipped', 'replaced'):
            getattr(report, key).extend(record[key])
        report.encoded += int(record['encoded'])
        report.cache_hits += int(record['cache_hits'])
    except (OSError, ValueError, KeyError, TypeError):
        return
