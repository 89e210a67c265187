"""PF-WILLOW (Ham et al., 2016): the 900 test pairs."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from ..registry import DATASETS
from .base import AnnotationError, PairDataset, csv_rows, inside_root, make_pair, parses_as
from .sources import DatasetSource, RemoteFile, register_source

#: The ten PF-WILLOW classes, named after their folders.
WILLOW_CLASSES = ('car(G)', 'car(M)', 'car(S)', 'duck(S)', 'motorbike(G)', 'motorbike(M)',
                  'motorbike(S)', 'winebottle(M)', 'winebottle(wC)', 'winebottle(woC)')
NUM_KPS = 10

#: Where PF-WILLOW and its pair list are published (no checksums or sizes published).
PFWILLOW_SOURCE = register_source(DatasetSource(
    name='pfwillow', directory='PF-WILLOW',
    files=(RemoteFile('https://www.di.ens.fr/willow/research/proposalflow/dataset/'
                      'PF-dataset.zip', 'PF-dataset.zip'),
           RemoteFile('https://www.robots.ox.ac.uk/~xinghui/sd4match/test_pairs.csv',
                      'test_pairs.csv', extract=False)),
    layout=(f"<class>/<name>.png  (classes {', '.join(WILLOW_CLASSES[:5])},\n"
            f"    {', '.join(WILLOW_CLASSES[5:])})\n"
            'test_pairs.csv'),
    check_paths=('test_pairs.csv', 'car(G)')))


@DATASETS.register_module()
class PFWillowDataset(PairDataset):
    """PF-WILLOW pairs (test only): 10 classes, 10 keypoints per image, no object boxes.

    Layout under ``data_root``::

        <class>/<name>.png                 e.g. car(G)/car_01.png
        test_pairs.csv                     image A, image B, 10 x_A, 10 y_A, 10 x_B, 10 y_B

    The CSV's image paths start with the archive's folder (``PF-dataset/...``),
    which is dropped; the class is the next folder. Evaluate with the
    ``bbox-kp`` threshold (the box of the target keypoints).

    See :class:`~corrkit.datasets.base.PairDataset` for the arguments.

    Raises:
        FileNotFoundError: If ``test_pairs.csv`` is missing.
        AnnotationError: If a row is malformed (file and line named).
    """

    source = PFWILLOW_SOURCE
    SPLITS = {'test': 'test'}
    METAINFO = dict(classes=WILLOW_CLASSES)

    def load_pairs(self, root: Path) -> list[dict]:
        listing = root / 'test_pairs.csv'
        rows = csv_rows(listing, lambda row: not parses_as(row[-1]))
        return [self._load_pair(root, listing, line, row) for line, row in rows]

    def _load_pair(self, root: Path, listing: Path, line: int, row: list[str]) -> dict:
        where = f'{listing}, line {line}'
        if len(row) != 2 + 4 * NUM_KPS or not all(parses_as(v) for v in row[2:]):
            raise AnnotationError(f'{where}: expected 2 image paths and {4 * NUM_KPS} '
                                  f'coordinates, got {len(row)} fields')
        paths = [PurePosixPath(row[i].replace('\\', '/')) for i in (0, 1)]
        relative = [str(PurePosixPath(*p.parts[1:])) if len(p.parts) > 2 else str(p)
                    for p in paths]
        category = PurePosixPath(relative[0]).parts[0]
        if category not in WILLOW_CLASSES:
            raise AnnotationError(f'{where}: image path {row[0]!r} does not name one of the '
                                  f'classes {WILLOW_CLASSES} as its folder')
        coords = np.asarray(row[2:], dtype=np.float64).reshape(4, NUM_KPS)
        src_kps, trg_kps = coords[[0, 1]].T, coords[[2, 3]].T
        return make_pair(pair_id=f'{Path(relative[0]).stem}-{Path(relative[1]).stem}',
                         category=category,
                         src_img_path=inside_root(root, relative[0], listing),
                         trg_img_path=inside_root(root, relative[1], listing),
                         src_kps=src_kps, trg_kps=trg_kps)

