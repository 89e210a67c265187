"""Tiny datasets in the benchmarks' official layouts, written by the tests."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, width: int, height: int, seed: int = 0, mode: str = 'RGB') -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).convert(mode) \
        .save(path)


def write_spair(root: Path, pairs: list[dict], split: str = 'test') -> Path:
    """``pairs``: dicts with category, src/trg image names and sizes, and JSON fields."""
    lines = []
    for i, pair in enumerate(pairs, start=1):
        category = pair['category']
        for side in ('src', 'trg'):
            width, height = pair[f'{side}_size']
            write_image(root / 'JPEGImages' / category / pair[f'{side}_imname'], width, height,
                        seed=i)
        name = f"{i:06d}-{pair['src_imname'][:-4]}-{pair['trg_imname'][:-4]}:{category}"
        record = {k: v for k, v in pair.items() if not k.endswith('_size')}
        annotation = root / 'PairAnnotation' / split / f'{name}.json'
        annotation.parent.mkdir(parents=True, exist_ok=True)
        annotation.write_text(json.dumps(record))
        lines.append(name)
    layout = root / 'Layout' / 'large' / f'{split}.txt'
    layout.parent.mkdir(parents=True, exist_ok=True)
    layout.write_text('\n'.join(lines) + '\n')
    return root


def spair_pair(category='cat', src='a.jpg', trg='b.jpg', src_size=(100, 80),
               trg_size=(60, 120), **fields) -> dict:
    pair = dict(category=category, src_imname=src, trg_imname=trg, src_size=src_size,
                trg_size=trg_size, src_kps=[[10, 20], [50, 40], [90, 70]],
                trg_kps=[[5, 10], [30, 60], [55, 110]], src_bndbox=[0, 10, 99, 79],
                trg_bndbox=[2, 4, 50, 100], viewpoint_variation=1, scale_variation=0,
                truncation=2, occlusion=0)
    pair.update(fields)
    return pair


def write_pfpascal(root: Path, rows: list[list], annotations: dict[str, dict],
                   split: str = 'test', header: bool = True) -> Path:
    """``annotations``: image stem → dict(cls, kps (with NaN rows), bbox, size)."""
    from scipy.io import savemat
    for seed, (stem, anno) in enumerate(annotations.items()):
        write_image(root / 'JPEGImages' / f'{stem}.jpg', *anno['size'], seed=seed)
        path = root / 'Annotations' / anno['cls'] / f'{stem}.mat'
        path.parent.mkdir(parents=True, exist_ok=True)
        savemat(str(path), {'kps': np.asarray(anno['kps'], dtype=np.float64),
                            'bbox': np.asarray([anno['bbox']], dtype=np.float64)})
    with (root / f'{split}_pairs.csv').open('w', newline='') as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(['source_image', 'target_image', 'class', 'flip'][:len(rows[0])])
        writer.writerows(rows)
    return root


def write_pfwillow(root: Path, pairs: list[tuple[str, str, np.ndarray, np.ndarray]]) -> Path:
    """``pairs``: (image A, image B, src kps (10, 2), trg kps (10, 2)); paths under PF-dataset/."""
    header = ['imageA', 'imageB'] + [f'{a}{i}' for a in ('XA', 'YA', 'XB', 'YB')
                                     for i in range(1, 11)]
    rows = []
    for seed, (a, b, src, trg) in enumerate(pairs):
        for name in (a, b):
            if not (root / name).exists():
                write_image(root / name, 120, 90, seed=seed)
        rows.append([f'PF-dataset/{a}', f'PF-dataset/{b}', *src[:, 0], *src[:, 1],
                     *trg[:, 0], *trg[:, 1]])
    with (root / 'test_pairs.csv').open('w', newline='') as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return root


#: The fixture's families and species (AP-10K: supercategory = family, name = species).
AP10K_FAMILIES = {'Felidae': ('cat', 'lion'), 'Canidae': ('dog', 'fox')}
AP10K_KEYPOINTS = ('left_eye', 'right_eye', 'nose', 'tail')
AP10K_FILES = ('train', 'val', 'test')


def ap10k_instance(species_index: int, n: int) -> dict:
    """The ``n``-th default instance (0, 1, 2) of a species: n=1 has no tail (v=0), n=2 an
    occluded nose (v=1); their bboxes differ in width."""
    return dict(image_id=10 * (species_index + 1) + n, category_id=species_index + 1,
                keypoints=[10 + n, 12, 2, 30, 12 + n, 2, 20, 25, 1 if n == 2 else 2,
                           40, 40, 0 if n == 1 else 2],
                bbox=[5, 5, 40 + 5 * n, 35], split=AP10K_FILES[n])


def write_ap10k(root: Path, instances: list[dict] | None = None) -> Path:
    """AP-10K's layout: ``annotations/ap10k-{train,val,test}-split1.json`` and
    ``data/<image id, 12 digits>.jpg`` (64x48). ``instances``: dicts with ``image_id``,
    ``category_id``, ``keypoints``, ``bbox`` (or None), ``split`` (the file); by default
    3 per species (one per file), from :func:`ap10k_instance`."""
    species = [(family, name) for family, names in AP10K_FAMILIES.items() for name in names]
    categories = [{'id': i, 'name': name, 'supercategory': family,
                   'keypoints': list(AP10K_KEYPOINTS), 'skeleton': [[1, 3], [2, 3]]}
                  for i, (family, name) in enumerate(species, start=1)]
    if instances is None:
        instances = [ap10k_instance(s, n) for s in range(len(species)) for n in range(3)]
    docs = {split: {'images': [], 'annotations': [], 'categories': categories}
            for split in AP10K_FILES}
    for number, inst in enumerate(instances, start=1):
        doc = docs[inst['split']]
        name = f"{inst['image_id']:012d}.jpg"
        if not any(image['id'] == inst['image_id'] for image in doc['images']):
            doc['images'].append({'id': inst['image_id'], 'file_name': name,
                                  'width': 64, 'height': 48})
            write_image(root / 'data' / name, 64, 48, seed=inst['image_id'])
        annotation = {'id': inst.get('id', number), 'image_id': inst['image_id'],
                      'category_id': inst['category_id'], 'keypoints': inst['keypoints'],
                      'num_keypoints': sum(v > 0 for v in inst['keypoints'][2::3]),
                      'iscrowd': 0}
        if inst.get('bbox') is not None:
            annotation['bbox'] = inst['bbox']
        doc['annotations'].append(annotation)
    (root / 'annotations').mkdir(parents=True, exist_ok=True)
    for split, doc in docs.items():
        (root / 'annotations' / f'ap10k-{split}-split1.json').write_text(json.dumps(doc))
    return root
