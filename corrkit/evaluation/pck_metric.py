"""PCK as an mmengine metric, with per-category and per-difficulty reports."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.structures import BaseDataElement

from ..registry import METRICS
from ..structures import DIFFICULTY_FIELDS, THRESHOLD_KINDS
from .functional import pck
from .report import (category_table, describe_measured_on, difficulty_table, pairs_digest,
                     summarize)

AVERAGES = ('pair', 'keypoint')

#: Where distances and thresholds are measured, see :class:`PCKMetric`.
FRAMES = ('resized', 'original')


@METRICS.register_module()
class PCKMetric(BaseMetric):
    """Percentage of correct keypoints, reported the way the benchmarks define it.

    A predicted target keypoint is correct when its distance to the ground
    truth is at most ``alpha`` times the pair's reference size (inclusive). The
    reference size is chosen by ``threshold``; the data samples carry all kinds
    in ``pck_ref_sizes`` (:func:`~corrkit.structures.pck_reference_sizes`).

    ``frame`` says where both are measured. ``'resized'`` (the default,
    TransforMatcher's protocol) uses pixels of the model's input frame.
    ``'original'`` (the SPair-71k authors' protocol, and the one the DINOv2-based
    papers report) maps each prediction back to the original target image and
    takes the reference sizes there. The two agree when the resize keeps the
    aspect ratio; a stretching resize scales the axes differently, so a distance
    and a box side shrink by different factors and the numbers differ.

    Returns ``{'PCK@<alpha>': percent}`` for each alpha (prefixed by ``prefix/``
    when given), prints the overall, per-category and, for SPair-71k, the
    per-difficulty tables, and writes them to ``<out_dir>/pck_<threshold>.json``.
    When :attr:`dataset_info` says what the evaluation measures (split, dataset,
    categories: :class:`~corrkit.evaluation.PCKReportHook` sets it from the loop's
    dataset), the printed tables name it and the report keeps it as ``measured_on``.

    Args:
        alphas: Tolerance factors.
        threshold: Reference size kind: ``img`` (PF-PASCAL), ``bbox`` (SPair-71k),
            ``bbox-kp`` (PF-WILLOW) or ``bbox-kp-padded`` (the looser PF-WILLOW
            variant of the public code of several peers).
        average: ``pair`` averages per pair then over pairs (the benchmarks'
            default); ``keypoint`` pools all keypoints.
        frame: ``'resized'`` or ``'original'``, see above.
        out_dir: Folder for the JSON report; ``None`` writes none (the corrkit
            tools set it to the work directory).
        collect_device: Where results are gathered in distributed runs.
        prefix: Prefix of the returned metric names.

    Raises:
        ValueError: If ``threshold``, ``average`` or ``frame`` is unknown, or
            ``alphas`` is empty.
        KeyError: If a data sample lacks the requested reference size (e.g.
            ``bbox`` on PF-WILLOW, which has no boxes).

    Examples:
        >>> from corrkit.structures import PairDataSample
        >>> s = PairDataSample(src_kps=torch.zeros(2, 2), trg_kps=torch.zeros(2, 2),
        ...                    kps_valid=torch.tensor([True, True]),
        ...                    pred_trg_kps=torch.tensor([[12.0, 0.0], [0.0, 13.0]]))
        >>> s.set_metainfo(dict(category='cat', pck_ref_sizes={'img': 240.0}))
        >>> metric = PCKMetric(alphas=(0.05,), threshold='img')
        >>> metric.process({}, [s])
        >>> metric.compute_metrics(metric.results)
        {'PCK@0.05': 50.0}
    """

    default_prefix = ''  # metric names are already explicit: PCK@0.1

    def __init__(self, alphas: Sequence[float] = (0.05, 0.1, 0.15), threshold: str = 'bbox',
                 average: str = 'pair', frame: str = 'resized', out_dir: str | None = None,
                 collect_device: str = 'cpu', prefix: str | None = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if threshold not in THRESHOLD_KINDS:
            raise ValueError(f'unknown PCK threshold {threshold!r}; expected one of '
                             f'{THRESHOLD_KINDS}')
        if average not in AVERAGES:
            raise ValueError(f'unknown PCK averaging {average!r}; expected one of {AVERAGES}')
        if frame not in FRAMES:
            raise ValueError(f'unknown PCK frame {frame!r}; expected one of {FRAMES}')
        if not alphas:
            raise ValueError('alphas must name at least one tolerance, e.g. (0.05, 0.1, 0.15)')
        self.alphas = tuple(float(a) for a in alphas)
        self.threshold = threshold
        self.average = average
        self.frame = frame
        self.out_dir = out_dir
        #: What the evaluation measures (:func:`~corrkit.evaluation.report.dataset_info`).
        self.dataset_info: dict | None = None

    def process(self, data_batch: Any, data_samples: Sequence[dict | BaseDataElement]) -> None:
        """Score each pair and keep only the counts (cheap to gather across ranks)."""
        for sample in data_samples:
            if isinstance(sample, BaseDataElement):
                sample = sample.to_dict()
            pred, gt, ref_sizes = self._in_frame(sample)
            if self.threshold not in ref_sizes:
                raise KeyError(f"pair {sample.get('pair_id')!r} has no {self.threshold!r} PCK "
                               f"reference size (it has {sorted(ref_sizes)}); choose a "
                               f"threshold the dataset supports")
            valid = torch.as_tensor(sample['kps_valid'], dtype=torch.bool).cpu()
            num_valid = int(valid.sum())
            # One record per pair, even without valid keypoints: distributed
            # collection relies on it to drop the sampler's padding.
            ref = torch.tensor([float(ref_sizes[self.threshold])], dtype=torch.float64)
            correct = [round(float(pck(pred, gt, valid[None], ref, a)) * num_valid)
                       if num_valid else 0 for a in self.alphas]
            record = dict(pair_id=sample.get('pair_id'), category=sample.get('category', 'all'),
                          num_valid=num_valid, correct=correct)
            record.update({k: sample[k] for k in DIFFICULTY_FIELDS if sample.get(k) is not None})
            self.results.append(record)

    def _in_frame(self, sample: dict) -> tuple[torch.Tensor, torch.Tensor, dict]:
        """Predicted and true target keypoints ``(1, K, 2)`` and the reference sizes, in the
        frame this metric measures in."""
        pred = torch.as_tensor(sample['pred_trg_kps']).detach().cpu().double()[None]
        if self.frame == 'resized':
            gt = torch.as_tensor(sample['trg_kps']).cpu().double()[None]
            return pred, gt, sample.get('pck_ref_sizes', {})
        frame = sample.get('trg_frame')
        if frame is None or 'pck_ref_sizes_original' not in sample:
            raise KeyError(f"pair {sample.get('pair_id')!r} cannot be measured in the original "
                           f"image: its pipeline kept no map back to it (a flip, or a pipeline "
                           f"without LoadPairImages); use frame='resized'")
        ax, bx, ay, by = (float(v) for v in frame)
        pred = torch.stack([(pred[..., 0] - bx) / ax, (pred[..., 1] - by) / ay], dim=-1)
        gt = torch.as_tensor(sample['trg_kps_original']).cpu().double()[None]
        return pred, gt, sample['pck_ref_sizes_original']

    def compute_metrics(self, results: list) -> dict[str, float]:
        """Summarise, print the tables, write the JSON report and return overall PCK."""
        summary = summarize(results, self.alphas, self.average)
        report = dict(threshold=self.threshold, average=self.average, frame=self.frame,
                      alphas=list(self.alphas), **summary, pairs_digest=pairs_digest(results))
        if self.dataset_info:
            report['measured_on'] = dict(self.dataset_info)
        title = (f'PCK (%) with threshold {self.threshold!r}, averaged per {self.average}, '
                 f'{self.frame} frame, {summary["num_pairs"]} pairs, '
                 f'{summary["num_keypoints"]} keypoints')
        text = [title]
        if self.dataset_info:
            text.append(f'measured on {describe_measured_on(self.dataset_info)}')
        text += ['per category:', category_table(summary, self.alphas)]
        if summary['per_difficulty']:
            text += ['per difficulty:', difficulty_table(summary, self.alphas)]
        print_log('\n'.join(text), logger='current')
        if self.out_dir is not None:
            path = Path(self.out_dir) / f'pck_{self.threshold}.json'
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(_finite(report), indent=2))
            print_log(f'PCK report written to {path}', logger='current')
        return {f'PCK@{a}': summary['overall'][str(a)] for a in self.alphas}


def _finite(value: Any) -> Any:
    """Replace NaN with ``None`` so that the report is strict JSON."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value
