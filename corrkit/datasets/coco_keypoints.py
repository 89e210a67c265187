"""COCO keypoints collections as image pairs, and GeoAware-SC's AP-10K protocol.

Any COCO keypoints file (``images``, ``categories`` with keypoint names and an
optional ``supercategory``, ``annotations`` with ``[x, y, v]`` triplets and
optional ``bbox``) becomes a set of image pairs: instances are paired by a
*setting* (the same category; the same supercategory but different categories;
different supercategories), each pair keeps the keypoints labelled in both
instances, and the PCK box is the target instance's ``bbox``. AP-10K names its
categories after species and its supercategories after families, hence the
settings' names.
"""
from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from ..coco import KeypointCategory, KeypointsFile, read_coco_keypoints
from ..registry import DATASETS
from .base import AnnotationError, PairDataset, csv_rows, inside_root, make_pair, parses_as
from .sources import DatasetSource, RemoteFile

#: The pairing rules: same category, same supercategory across categories, across
#: supercategories (AP-10K: species and families).
SETTINGS = ('intra-species', 'cross-species', 'cross-family')
#: ``all``: each two instances once (the source is the one earlier in the order);
#: ``ordered``: both directions.
PAIR_MODES = ('all', 'ordered')
#: What ``{split}`` in a file name becomes, by :attr:`PairDataset.split`.
FILE_SPLITS = {'trn': 'train', 'val': 'val', 'test': 'test'}


@dataclass(frozen=True)
class _Instance:
    key: str
    image_id: int
    image_path: Path
    category: KeypointCategory
    keypoints: np.ndarray  # (K, 3) x, y, v
    bbox: np.ndarray | None  # x1, y1, x2, y2



@DATASETS.register_module()
class COCOKeypointsDataset(PairDataset):
    """Same-category (or cross-category) pairs from COCO keypoints files.

    Layout under ``data_root``: the file(s) of ``ann_file`` and the images, whose
    ``file_name`` is read under ``data_root / img_prefix`` (and may not leave it).

    Pairs:

    - ``setting='intra-species'``: two instances of the same category, labelled
      by its name; ``'cross-species'``: the same non-empty ``supercategory`` but
      different categories, labelled by the supercategory; ``'cross-family'``:
      different supercategories, labelled ``'<family A> | <family B>'`` (sorted).
      Across categories, keypoints are matched by name.
    - ``pairs='all'`` takes every unordered pair once, the source being the
      instance earlier in the order (category name, then image id, then the
      file's order); ``pairs='ordered'`` takes both directions.
    - A pair keeps the keypoints labelled (``v > 0``) in both instances; it is
      dropped when their weighted count is below ``min_keypoints``: a keypoint
      counts ``w_src * w_trg`` with ``w = 1`` for ``v = 2`` and
      ``occluded_weight`` for ``v = 1``.
    - ``max_pairs_per_category`` and ``pairs_per_instance`` (times the number of
      instances behind a label) cap the pairs of each label: a random subset,
      drawn from a generator seeded by ``seed`` and the label (so a label's draw
      does not depend on the others), kept in the order above.
    - ``pair_list``: a CSV file under ``data_root`` of ``source, target``
      annotation ids, one pair a line (a header is allowed); it replaces the
      setting and the caps (the label still follows the relation of the two
      categories), and ignores ``instance_split``.

    Boxes: an instance's ``bbox`` ``[x, y, w, h]`` becomes ``[x, y, x + w, y + h]``;
    without one, the box around its labelled keypoints. The ``bbox`` PCK
    threshold is then ``max(w, h)`` of the target's box.

    Args:
        data_root: The collection's folder.
        ann_file: COCO keypoints file(s) relative to ``data_root``; ``{split}``
            becomes ``train``, ``val`` or ``test``. Several files are merged (an
            image id or category id must mean the same in each; an annotation met
            again with the same image and id is read once).
        img_prefix: The images' folder, relative to ``data_root``.
        split: ``train`` / ``trn``, ``val`` or ``test``.
        setting: One of :data:`SETTINGS`.
        pairs: One of :data:`PAIR_MODES`.
        pair_list: Optional CSV of annotation id pairs (``{split}`` replaced).
        max_pairs_per_category: Cap per label, or None.
        pairs_per_instance: Cap per label, times the instances behind it, or None.
        seed: Seed of the capped draws.
        min_keypoints: Least weighted count of keypoints labelled in both.
        occluded_weight: Weight of a ``v = 1`` keypoint in that count.
        min_instance_keypoints: Drop instances with fewer labelled keypoints.
        one_instance_per_image: Keep only the first annotation of each image (in
            the order of the files and their ``annotations``).
        exclude_images: Optional text file under ``data_root`` of image ids (one
            a line) whose instances are left out.
        instance_split: Optional per-category split of the instances, e.g.
            ``dict(test=30, val=20)``: in image-id order, the last 30 instances of
            each category are ``test``, the 20 before them ``val``, the rest
            ``train``.
        pipeline: Transform configs or callables.
        test_mode: mmengine's test mode; defaults to ``split != 'trn'``.
        indices: Keep only these pairs (an int keeps the first ``n``).
        serialize_data: Share the pair list between workers as bytes.
        lazy_init: Defer reading the files until first use.
        max_refetch: mmengine's retry count when a pipeline returns ``None``.

    Raises:
        ValueError: If an option is unknown or out of range.
        DatasetNotFoundError: If ``data_root`` does not exist.
        FileNotFoundError: If an annotation file or list is missing.
        AnnotationError: If a file is malformed (file, entry and key named), two
            files disagree on an id, a pair list names an unknown annotation, or no
            pair is left.

    Examples:
        >>> import json, tempfile
        >>> doc = {'images': [{'id': i, 'file_name': f'{i}.jpg'} for i in (1, 2, 3)],
        ...        'categories': [{'id': 1, 'name': 'cat', 'keypoints': ['eye', 'nose']}],
        ...        'annotations': [{'id': i, 'image_id': i, 'category_id': 1,
        ...                         'keypoints': [10, 10, 2, 20, 20, 2 * (i != 3)],
        ...                         'bbox': [0, 0, 40, 30]} for i in (1, 2, 3)]}
        >>> with tempfile.TemporaryDirectory() as root:
        ...     _ = Path(root, 'annotations.json').write_text(json.dumps(doc))
        ...     dataset = COCOKeypointsDataset(root)
        ...     pairs = [dataset.get_data_info(i) for i in range(len(dataset))]
        >>> [(p['pair_id'], p['kps_valid'].tolist()) for p in pairs]
        [('1-2:cat', [True, True]), ('1-3:cat', [True, False]), ('2-3:cat', [True, False])]
        >>> pairs[0]['trg_bbox'].tolist()
        [0.0, 0.0, 40.0, 30.0]
    """

    def __init__(self, data_root: str, ann_file: str | Sequence[str] = 'annotations.json',
                 img_prefix: str = '', split: str = 'test', setting: str = 'intra-species',
                 pairs: str = 'all', pair_list: str | None = None,
                 max_pairs_per_category: int | None = None,
                 pairs_per_instance: int | None = None, seed: int = 0,
                 min_keypoints: float = 1, occluded_weight: float = 1.0,
                 min_instance_keypoints: int = 1, one_instance_per_image: bool = False,
                 exclude_images: str | None = None,
                 instance_split: dict[str, int] | None = None,
                 pipeline: Sequence[dict | Callable] = (), test_mode: bool | None = None,
                 indices: int | Sequence[int] | None = None, serialize_data: bool = True,
                 lazy_init: bool = False, max_refetch: int = 1000):
        name = type(self).__name__
        if setting not in SETTINGS:
            raise ValueError(f'{name}: setting must be one of {SETTINGS}, got {setting!r}')
        if pairs not in PAIR_MODES:
            raise ValueError(f'{name}: pairs must be one of {PAIR_MODES}, got {pairs!r}')
        for option, value in (('max_pairs_per_category', max_pairs_per_category),
                              ('pairs_per_instance', pairs_per_instance)):
            if value is not None and value < 1:
                raise ValueError(f'{name}: {option} must be at least 1 or None, got {value}')
        if not 0 <= occluded_weight <= 1:
            raise ValueError(f'{name}: occluded_weight must lie in [0, 1], got {occluded_weight}')
        if min_keypoints <= 0:
            raise ValueError(f'{name}: min_keypoints must be positive, got {min_keypoints}')
        if instance_split is not None and (
                set(instance_split) - {'test', 'val'} or
                any(int(n) < 0 for n in instance_split.values())):
            raise ValueError(f"{name}: instance_split maps 'test' and 'val' to counts of "
                             f'instances, got {instance_split!r}')
        self.ann_files = (ann_file,) if isinstance(ann_file, str) else tuple(ann_file)
        if not self.ann_files:
            raise ValueError(f'{name}: ann_file names no file')
        self.img_prefix = img_prefix
        self.setting, self.pairs, self.pair_list = setting, pairs, pair_list
        self.max_pairs_per_category = max_pairs_per_category
        self.pairs_per_instance = pairs_per_instance
        self.seed, self.min_keypoints, self.occluded_weight = seed, min_keypoints, occluded_weight
        self.min_instance_keypoints = min_instance_keypoints
        self.one_instance_per_image = one_instance_per_image
        self.exclude_images = exclude_images
        self.instance_split = dict(instance_split) if instance_split is not None else None
        super().__init__(data_root=data_root, split=split, pipeline=pipeline,
                         test_mode=test_mode, indices=indices, serialize_data=serialize_data,
                         lazy_init=lazy_init, max_refetch=max_refetch)

    # -- where things are ------------------------------------------------------------
    def _name(self, template: str) -> str:
        return template.replace('{split}', FILE_SPLITS[self.split])

    def _layout(self) -> str:
        names = [self._name(f) for f in self.ann_files]
        images = f'{self.img_prefix}/' if self.img_prefix else ''
        return '\n'.join(names + [f'{images}<file_name of each image>'])

    def missing_message(self, root: Path) -> str:
        if self.source is not None:
            return super().missing_message(root)
        tree = '\n'.join(f'        {line}' for line in self._layout().splitlines())
        return (f'{type(self).__name__}: the collection was not found at {root}. '
                f'Expected layout:\n    {root}/\n{tree}\nPoint data_root at the folder that '
                'holds the COCO keypoints file(s) and the images.')

    # -- reading ---------------------------------------------------------------------
    def load_pairs(self, root: Path) -> list[dict]:
        instances = self._instances(root)
        if self.pair_list is not None:
            return self._listed_pairs(root, instances)
        if self.instance_split is not None:
            instances = self._split_instances(instances)
        pairs = [self._pair(src, trg, label) for label, src, trg in self._candidates(instances)]
        if not pairs:  # mmengine cannot hold an empty dataset; say why there is nothing
            raise AnnotationError(
                f'{type(self).__name__} ({root}, split {self.split!r}, setting '
                f'{self.setting!r}): no pair; {len(instances)} instances are left after the '
                f'filters and the split, and no two of them qualify (see min_keypoints, '
                f'occluded_weight, min_instance_keypoints, instance_split)')
        return pairs

    def _instances(self, root: Path) -> list[_Instance]:
        files = [read_coco_keypoints(inside_root(root, self._name(f), Path('ann_file')))
                 for f in self.ann_files]
        _check_agreement(files)
        excluded = self._excluded(root)
        images_root = inside_root(root, self.img_prefix, Path('img_prefix')) \
            if self.img_prefix else root
        seen, images_seen, out = set(), set(), []
        for coco in files:
            for ann in coco.annotations:
                ident = (ann.image_id, ann.id)
                if ann.id is not None and ident in seen:
                    continue
                seen.add(ident)
                if ann.image_id in excluded:
                    continue
                if self.one_instance_per_image and ann.image_id in images_seen:
                    continue
                images_seen.add(ann.image_id)
                if int(ann.labelled.sum()) < self.min_instance_keypoints:
                    continue
                key = str(ann.id) if ann.id is not None else f'{coco.path.stem}.{ann.index}'
                out.append(_Instance(key, ann.image_id,
                                     coco.image_path(coco.images[ann.image_id], images_root),
                                     coco.categories[ann.category_id], ann.keypoints,
                                     _box(ann.bbox, ann.keypoints)))
        # a stable order that does not depend on how the files list their entries
        return sorted(out, key=lambda i: (i.category.name, i.image_id))

    def _excluded(self, root: Path) -> set[int]:
        if self.exclude_images is None:
            return set()
        path = inside_root(root, self._name(self.exclude_images), Path('exclude_images'))
        if not path.is_file():
            raise FileNotFoundError(f"image exclusion list '{path}' does not exist")
        try:
            lines = path.read_text(encoding='utf-8').splitlines()
        except UnicodeDecodeError as err:
            raise AnnotationError(f'{path}: not a UTF-8 text file ({err})') from err
        ids = set()
        for line, text in enumerate(lines, start=1):
            if text.strip():
                if not parses_as(text.strip(), int):
                    raise AnnotationError(f'{path}, line {line}: expected an image id, '
                                          f'got {text.strip()[:40]!r}')
                ids.add(int(text.strip()))
        return ids

    def _split_instances(self, instances: list[_Instance]) -> list[_Instance]:
        n_test = int(self.instance_split.get('test', 0))
        n_val = int(self.instance_split.get('val', 0))
        kept = []
        for _, group in itertools.groupby(instances, key=lambda i: i.category.name):
            group = list(group)
            test_start = max(0, len(group) - n_test)
            val_start = max(0, test_start - n_val)
            part = {'test': group[test_start:], 'val': group[val_start:test_start],
                    'trn': group[:val_start]}[self.split]
            kept.extend(part)
        return kept

    # -- pairing ---------------------------------------------------------------------
    def _candidates(self, instances: list[_Instance]) -> list[tuple[str, _Instance, _Instance]]:
        groups = [(category, list(members)) for category, members in
                  itertools.groupby(instances, key=lambda i: i.category)]
        weights = np.array([0.0, self.occluded_weight, 1.0])
        found: dict[str, list[tuple[_Instance, _Instance]]] = {}
        behind: dict[str, set[int]] = {}  # the categories whose instances a label pairs
        for (a, (cat_a, group_a)), (b, (cat_b, group_b)) in \
                itertools.combinations_with_replacement(enumerate(groups), 2):
            if not _related(cat_a, cat_b, self.setting):
                continue
            label = _category_label(cat_a, cat_b)
            behind.setdefault(label, set()).update((a, b))
            s, t = _common(cat_a, cat_b)
            w_a = weights[np.stack([i.keypoints[s, 2] for i in group_a]).astype(int)]
            w_b = weights[np.stack([i.keypoints[t, 2] for i in group_b]).astype(int)]
            strong = w_a @ w_b.T + 1e-9 >= self.min_keypoints
            if a == b:
                strong = np.triu(strong, k=1)
            chosen = found.setdefault(label, [])
            for i, j in zip(*np.nonzero(strong)):
                chosen.append((group_a[i], group_b[j]))
                if self.pairs == 'ordered':
                    chosen.append((group_b[j], group_a[i]))
        out = []
        for label in sorted(found):
            chosen = found[label]
            cap = self._cap(sum(len(groups[g][1]) for g in behind[label]))
            if cap is not None and len(chosen) > cap:
                rng = np.random.default_rng([self.seed, zlib.crc32(label.encode())])
                chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), cap, replace=False))]
            out.extend((label, src, trg) for src, trg in chosen)
        return out

    def _cap(self, n_instances: int) -> int | None:
        caps = [c for c in (self.max_pairs_per_category,
                            None if self.pairs_per_instance is None
                            else self.pairs_per_instance * n_instances) if c is not None]
        return min(caps) if caps else None

    def _strength(self, src: _Instance, trg: _Instance) -> float:
        s, t = _common(src.category, trg.category)
        weights = np.array([0.0, self.occluded_weight, 1.0])
        return float((weights[src.keypoints[s, 2].astype(int)] *
                      weights[trg.keypoints[t, 2].astype(int)]).sum())

    def _listed_pairs(self, root: Path, instances: list[_Instance]) -> list[dict]:
        listing = inside_root(root, self._name(self.pair_list), Path('pair_list'))
        by_key = {i.key: i for i in instances}
        out = []
        for line, row in csv_rows(listing, lambda row: not parses_as(row[0].strip(), int)):
            keys = [field.strip() for field in row]
            if len(keys) != 2:
                raise AnnotationError(f'{listing}, line {line}: expected 2 annotation ids '
                                      f'(source, target), got {len(keys)} fields')
            missing = [k for k in keys if k not in by_key]
            if missing:
                raise AnnotationError(f'{listing}, line {line}: annotation id {missing[0]} is '
                                      f'not among the instances read from '
                                      f'{", ".join(self._name(f) for f in self.ann_files)} '
                                      f'(or was left out by the instance filters)')
            src, trg = by_key[keys[0]], by_key[keys[1]]
            if self._strength(src, trg) + 1e-9 >= self.min_keypoints:
                out.append(self._pair(src, trg, _category_label(src.category, trg.category)))
        return out

    def _pair(self, src: _Instance, trg: _Instance, label: str) -> dict:
        s, t = _common(src.category, trg.category)
        valid = (src.keypoints[s, 2] > 0) & (trg.keypoints[t, 2] > 0)
        return make_pair(pair_id=f'{src.key}-{trg.key}:{label}', category=label,
                         src_img_path=src.image_path, trg_img_path=trg.image_path,
                         src_kps=src.keypoints[s, :2], trg_kps=trg.keypoints[t, :2],
                         valid=valid, src_bbox=src.bbox, trg_bbox=trg.bbox)


def _related(a: KeypointCategory, b: KeypointCategory, setting: str) -> bool:
    if setting == 'intra-species':
        return a.id == b.id
    if setting == 'cross-species':
        return a.id != b.id and bool(a.supercategory) and a.supercategory == b.supercategory
    return a.supercategory != b.supercategory


def _category_label(a: KeypointCategory, b: KeypointCategory) -> str:
    """A pair's category in the reports: the category, the family, or the two families."""
    if a.id == b.id:
        return a.name
    if a.supercategory and a.supercategory == b.supercategory:
        return a.supercategory
    return ' | '.join(sorted((a.supercategory or a.name, b.supercategory or b.name)))


def _common(a: KeypointCategory, b: KeypointCategory) -> tuple[list[int], list[int]]:
    """Indices of the keypoint names both categories have, in ``a``'s order."""
    if a.keypoints == b.keypoints:
        every = list(range(len(a.keypoints)))
        return every, every
    where = {name: j for j, name in enumerate(b.keypoints)}
    shared = [(i, where[name]) for i, name in enumerate(a.keypoints) if name in where]
    return [i for i, _ in shared], [j for _, j in shared]


def _box(bbox: np.ndarray | None, keypoints: np.ndarray) -> np.ndarray | None:
    if bbox is not None:
        x, y, w, h = bbox
        return np.array([x, y, x + w, y + h])
    labelled = keypoints[keypoints[:, 2] > 0, :2]
    if not len(labelled):
        return None
    return np.concatenate([labelled.min(0), labelled.max(0)])


def _check_agreement(files: list[KeypointsFile]) -> None:
    """Merged files must give an image id or a category id one meaning."""
    images, categories = {}, {}
    for coco in files:
        for image in coco.images.values():
            first = images.setdefault(image.id, (coco.path, image))
            if first[1].file_name != image.file_name:
                raise AnnotationError(f"'{coco.path}': image id {image.id} is "
                                      f"{image.file_name!r}, but {first[1].file_name!r} in "
                                      f"'{first[0]}'")
        for category in coco.categories.values():
            first = categories.setdefault(category.id, (coco.path, category))
            if (first[1].name, first[1].keypoints) != (category.name, category.keypoints):
                raise AnnotationError(f"'{coco.path}': category id {category.id} "
                                      f"({category.name!r}) differs from the one in "
                                      f"'{first[0]}' ({first[1].name!r}: name or keypoints)")


#: Where AP-10K is published (the authors' Google Drive; no checksum published, and
#: not in the download catalogue: the message says where to get it).
AP10K_SOURCE = DatasetSource(
    name='ap10k', directory='ap10k',
    files=(RemoteFile('https://drive.google.com/file/d/1-FNNGcdtAQRehYYkGY1y4wzFNg4iWNad/view',
                      'ap-10k.zip'),),
    layout=('annotations/ap10k-{train,val,test}-split{1,2,3}.json\n'
            'data/<image id>.jpg                 e.g. data/000000000001.jpg'),
    check_paths=('annotations/ap10k-test-split1.json', 'data'))


@DATASETS.register_module()
class AP10KDataset(COCOKeypointsDataset):
    """AP-10K (Yu et al., NeurIPS 2021 Datasets and Benchmarks) as GeoAware-SC's
    semantic-correspondence benchmark (Zhang et al., CVPR 2024).

    The defaults follow the rules of GeoAware-SC's preparation notebook: the
    three ``split1`` files are merged, the first annotation of each image is
    kept, instances with fewer than 3 labelled keypoints are dropped, and the
    instances of each species are split again (the last 30 in test, the 20
    before them in val); a pair needs a weighted count of 3 keypoints visible in
    both (``v = 1`` weighs 0.5 per side). ``setting`` picks intra-species,
    cross-species or cross-family pairs; the configs under
    ``configs/_base_/datasets/ap10k.py`` set the caps per setting and split.

    Layout under ``data_root`` (AP-10K's own)::

        annotations/ap10k-{train,val,test}-split{1,2,3}.json
        data/<image id>.jpg

    See :class:`COCOKeypointsDataset` for the arguments; GeoAware-SC's list of
    crowded images can be passed as ``exclude_images``.
    """

    source = AP10K_SOURCE

    def __init__(self, data_root: str,
                 ann_file: str | Sequence[str] = ('annotations/ap10k-train-split1.json',
                                                  'annotations/ap10k-test-split1.json',
                                                  'annotations/ap10k-val-split1.json'),
                 img_prefix: str = 'data', split: str = 'test', setting: str = 'intra-species',
                 pairs: str = 'all', pair_list: str | None = None,
                 max_pairs_per_category: int | None = None,
                 pairs_per_instance: int | None = None, seed: int = 42,
                 min_keypoints: float = 3, occluded_weight: float = 0.5,
                 min_instance_keypoints: int = 3, one_instance_per_image: bool = True,
                 exclude_images: str | None = None,
                 instance_split: dict[str, int] | None = None,
                 pipeline: Sequence[dict | Callable] = (), test_mode: bool | None = None,
                 indices: int | Sequence[int] | None = None, serialize_data: bool = True,
                 lazy_init: bool = False, max_refetch: int = 1000):
        super().__init__(
            data_root, ann_file=ann_file, img_prefix=img_prefix, split=split, setting=setting,
            pairs=pairs, pair_list=pair_list, max_pairs_per_category=max_pairs_per_category,
            pairs_per_instance=pairs_per_instance, seed=seed, min_keypoints=min_keypoints,
            occluded_weight=occluded_weight, min_instance_keypoints=min_instance_keypoints,
            one_instance_per_image=one_instance_per_image, exclude_images=exclude_images,
            instance_split=dict(test=30, val=20) if instance_split is None else instance_split,
            pipeline=pipeline, test_mode=test_mode, indices=indices,
            serialize_data=serialize_data, lazy_init=lazy_init, max_refetch=max_refetch)
