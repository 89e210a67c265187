"""Keypoint transfer on a collection with exact ground truth: fusion, scores, thresholds.

Usage:
    python tools/analysis/transfer_check.py [--model NAME] [--refs-per-category K]
                                            [--data-root DIR] [--work-dir DIR]

The mini dataset (real photos from installed packages and exact warps of them,
``tools/make_mini_dataset.py``) is written as COCO keypoints (one category per
photo). Views 1..K (K <= 5) of each photo are the references, views 6 and up the
targets (so every K is scored on the same targets). One ``corrkit transfer`` run per
photo keeps every reference's candidates in its parts, so each way of combining
them is scored on the same matches:

- each reference alone (averaged over the references), the plain coordinate
  median, the score-weighted mean, the best-scoring candidate and the weighted
  geometric median (the default);
- accepted against flagged points at several thresholds (PCK of each, and the
  share of points accepted), to choose ``--min-score``.

PCK is at alpha of the ground-truth box's longer side, over all points. First, the
motorcycle stereo pair (scikit-image's Middlebury views and disparity: real views of
one scene, exact matches) is transferred as a two-image collection. Writes
``WORK_DIR/transfer_check.json`` and prints markdown tables.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from corrkit.apis import init_matcher
from corrkit.apis.collection import target_ids
from corrkit.apis.transfer import transfer_keypoints
from corrkit.apis.transfer_outputs import read_part
from corrkit.cli.transfer import DEFAULT_MODEL
from corrkit.datasets.mini import make_mini_dataset
from corrkit.datasets.mini.coco import FIRST_TARGET, mini_dataset_coco, view_number
from corrkit.datasets.mini.stereo import make_stereo_pairs
from corrkit.evaluation.transfer_pck import evaluate_transfer
from corrkit.ops.fusion import FUSIONS, agreement_score, fuse_candidates
from corrkit.utils.fileio import common_folder
from corrkit.utils.text import format_table

ALPHAS = (0.05, 0.1, 0.15)
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
#: The stereo check's thresholds (of the 741-px image): 7.4, 14.8 and 37 px.
STEREO_ALPHAS = (0.01, 0.02, 0.05)
SPLITS = ('trn', 'val', 'test')


def collection(doc: dict, category: str, k: int) -> tuple[dict, list[dict], dict]:
    """References (views 1..k), targets (views 6 and up, not the photo itself), ground truth."""
    cat = next(c for c in doc['categories'] if c['name'] == category)
    images = [i for i in doc['images'] if i['file_name'].split('/')[1] == category]
    refs = [i for i in images if 1 <= view_number(i['file_name']) <= k]
    targets = [i for i in images if view_number(i['file_name']) > FIRST_TARGET - 1]
    by_image = {a['image_id']: a for a in doc['annotations'] if a['category_id'] == cat['id']}
    ref_doc = {'images': refs, 'categories': [cat],
               'annotations': [by_image[i['id']] for i in refs]}
    return ref_doc, targets, {t['id']: by_image[t['id']] for t in targets}


def score_points(points: np.ndarray, gt: np.ndarray, size: float) -> np.ndarray:
    return np.linalg.norm(points - gt, axis=-1) / size


def stereo_check(model, work: Path) -> dict:
    """The Middlebury motorcycle pair from scikit-image as a two-image collection: the left
    view's grid of points (exact matches from the disparity) transferred to the right view,
    and back; PCK at alpha of the image's longer side, accepted and flagged apart."""
    root = make_stereo_pairs(work / 'stereo-motorcycle')
    out = {}
    for record_path in sorted((root / 'PairAnnotation' / 'test').glob('*.json')):
        record = json.loads(record_path.read_text())
        width, height = record['src_imsize'][:2]
        names = [f'p{i:03d}' for i in range(len(record['src_kps']))]
        category = {'id': 1, 'name': 'motorcycle', 'keypoints': names, 'skeleton': []}

        def doc(name, points):
            flat = [c for x, y in points for c in (x, y, 2)]
            return {'images': [{'id': 1, 'file_name': f'JPEGImages/motorcycle/{name}',
                                'width': width, 'height': height}],
                    'categories': [category],
                    'annotations': [{'id': 1, 'image_id': 1, 'category_id': 1,
                                     'keypoints': flat, 'bbox': [0, 0, width, height]}]}
        direction = f"{record['src_imname'][:-4]}_to_{record['trg_imname'][:-4]}"
        refs, truth = root / f'{direction}_refs.json', root / f'{direction}_truth.json'
        refs.write_text(json.dumps(doc(record['src_imname'], record['src_kps'])))
        truth.write_text(json.dumps(doc(record['trg_imname'], record['trg_kps'])))
        target = root / 'JPEGImages' / 'motorcycle' / record['trg_imname']
        result_dir = work / 'stereo' / direction
        transfer_keypoints(model, refs, [target], result_dir, progress=False)
        report = evaluate_transfer(result_dir / 'annotations.json', truth, [target],
                                   alphas=STEREO_ALPHAS)
        out[direction] = report.overall
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--model', default=DEFAULT_MODEL)
    parser.add_argument('--refs-per-category', type=int, default=5)
    parser.add_argument('--data-root', default='data/mini-spair')
    parser.add_argument('--work-dir', default='work_dirs/transfer_check')
    parser.add_argument('--categories', nargs='*', help='photos (default: all)')
    parser.add_argument('--stereo-only', action='store_true',
                        help='only the stereo pair (real views of one scene, exact matches)')
    args = parser.parse_args(argv)
    root, work = Path(args.data_root), Path(args.work_dir) / args.model
    doc = mini_dataset_coco(root, SPLITS)
    model = init_matcher(args.model)
    stereo = stereo_check(model, work)
    rows_stereo = [[direction, group, summary['n']] + [
        '-' if summary[f'pck@{a:g}'] is None else f"{100 * summary[f'pck@{a:g}']:.1f}"
        for a in STEREO_ALPHAS]
        for direction, overall in stereo.items() for group, summary in overall.items()]
    print(f'## Stereo pair, one reference ({args.model})\n')
    print(format_table(['direction', 'points', 'n'] + [f'PCK@{a:g}' for a in STEREO_ALPHAS],
                       rows_stereo, style='markdown'))
    if args.stereo_only:
        return 0
    k = args.refs_per_category
    if not 1 <= k < FIRST_TARGET:
        parser.error(f'--refs-per-category must be 1 to {FIRST_TARGET - 1}')
    make_mini_dataset(root)
    rows = {'single': [], **{f: [] for f in FUSIONS}}
    scored = []  # (fused distance, fused score) per point, geometric median
    single_scored = []  # (distance, score) of each reference's own candidate
    for cat in args.categories or [c['name'] for c in doc['categories']]:
        ref_doc, targets, truth = collection(doc, cat, k)
        refs_path = work / cat / 'refs.json'
        refs_path.parent.mkdir(parents=True, exist_ok=True)
        refs_path.write_text(json.dumps(ref_doc))
        paths = [root / t['file_name'] for t in targets]
        transfer_keypoints(model, refs_path, paths, work / cat, refs_root=root, progress=False)
        ids = target_ids(paths, common_folder(paths))
        for target, target_id in zip(targets, ids):
            part = read_part(work / cat / 'parts' / f'{target_id}.json')
            result = next(iter(part['categories'].values()))
            gt = np.asarray(truth[target['id']]['keypoints'], dtype=np.float64).reshape(-1, 3)
            box = truth[target['id']]['bbox']
            size = max(box[2], box[3])
            cands = torch.tensor(result['candidates'])  # (R, K, 2)
            scores = torch.tensor(result['candidate_scores'])
            valid = torch.tensor([[r > 0 for r in ref['keypoints'][2::3]]
                                  for ref in ref_doc['annotations']])
            labelled = gt[:, 2] > 0
            for r in range(len(cands)):
                ok = labelled & valid[r].numpy()
                distance = score_points(cands[r].numpy()[ok], gt[ok, :2], size)
                rows['single'] += distance.tolist()
                single_scored += list(zip(distance.tolist(), scores[r].numpy()[ok].tolist()))
            points, weights, mask = cands.transpose(0, 1), scores.T, valid.T
            for fusion in FUSIONS:
                fused = fuse_candidates(points, weights, mask, fusion).numpy()
                ok = labelled & mask.any(1).numpy()
                rows[fusion] += score_points(fused[ok], gt[ok, :2], size).tolist()
                if fusion == 'geometric_median':
                    fused_t = torch.nan_to_num(torch.tensor(fused))
                    known = mask.any(1)
                    extent = (fused_t[known].amax(0) - fused_t[known].amin(0)).max().item()
                    score = agreement_score(points, weights, mask, fused_t, torch.tensor(
                        max(extent, 0.1 * max(part['size'])))).numpy()
                    scored += list(zip(score_points(fused[ok], gt[ok, :2], size).tolist(),
                                       score[ok].tolist()))
        print(f'{cat}: {len(targets)} targets', file=sys.stderr)
    report = {'model': args.model, 'refs_per_category': k, 'alphas': ALPHAS,
              'stereo': stereo}
    table = []
    for name, distances in rows.items():
        d = np.asarray(distances)
        report[name] = {f'pck@{a:g}': float((d <= a).mean()) for a in ALPHAS} | {'n': len(d)}
        table.append([name, len(d)] + [f'{100 * (d <= a).mean():.1f}' for a in ALPHAS])
    print(f'## Fusion of {k} references ({args.model})\n')
    print(format_table(['candidates', 'points'] + [f'PCK@{a:g}' for a in ALPHAS], table,
                       style='markdown'))
    for key, pairs, title in (('thresholds', scored, f'geometric median of {k}'),
                              ('thresholds_single', single_scored, 'one reference')):
        d, s = (np.asarray(v) for v in zip(*pairs))
        split_rows, report[key] = [], {}
        for t in THRESHOLDS:
            acc, flag = d[s >= t], d[s < t]
            entry = {'accepted_share': float((s >= t).mean()),
                     'accepted_pck@0.1': float((acc <= 0.1).mean()) if len(acc) else None,
                     'flagged_pck@0.1': float((flag <= 0.1).mean()) if len(flag) else None}
            report[key][str(t)] = entry
            split_rows.append([t, f"{100 * entry['accepted_share']:.1f}"] + [
                '-' if entry[name] is None else f'{100 * entry[name]:.1f}'
                for name in ('accepted_pck@0.1', 'flagged_pck@0.1')])
        print(f'\n## Accepted and flagged points ({title}, {len(d)} points)\n')
        print(format_table(['min score', 'accepted %', 'accepted PCK@0.1', 'flagged PCK@0.1'],
                           split_rows, style='markdown'))
    out = Path(args.work_dir) / f'transfer_check_{args.model}_k{k}.json'
    out.write_text(json.dumps(report, indent=1))
    print(f'\n{out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
