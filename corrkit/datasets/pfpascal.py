"""PF-PASCAL (Ham et al., 2018) in the layout of the public pair lists."""
from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from ..registry import DATASETS
from .base import AnnotationError, PairDataset, csv_rows, make_pair, parses_as, points_field
from .sources import DatasetSource, RemoteFile, register_source

#: PASCAL VOC classes; the pair lists number them 1–20 in this order.
PASCAL_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
                  'cow', 'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant',
                  'sheep', 'sofa', 'train', 'tvmonitor')

#: Where PF-PASCAL and its pair lists are published (no checksums or sizes published).
PFPASCAL_SOURCE = register_source(DatasetSource(
    name='pfpascal', directory='PF-PASCAL',
    files=(RemoteFile('https://www.di.ens.fr/willow/research/proposalflow/dataset/'
                      'PF-dataset-PASCAL.zip', 'PF-dataset-PASCAL.zip'),
           RemoteFile('https://www.robots.ox.ac.uk/~xinghui/sd4match/'
                      'pf-pascal_image_pairs.zip', 'pf-pascal_image_pairs.zip')),
    layout=('JPEGImages/<name>.jpg\n'
            'Annotations/<class>/<name>.mat\n'
            '{trn,val,test}_pairs.csv'),
    check_paths=('JPEGImages', 'Annotations', 'test_pairs.csv')))


@DATASETS.register_module()
class PFPascalDataset(PairDataset):
    """PF-PASCAL pairs: 20 PASCAL classes, 2,940 / 308 / 299 pairs.

    Layout under ``data_root``::

        JPEGImages/<name>.jpg
        Annotations/<class>/<name>.mat     kps (N × 2, NaN rows where invisible), bbox
        {trn,val,test}_pairs.csv           source path, target path, class 1–20[, flip]

    Only the file name of the CSV's image paths is used. A keypoint is valid
    when it is visible in both images. On the training list, a flip flag of 1
    asks for both images to be mirrored (the ``PairFlip`` transform does it).
    The ``.mat`` files are read with SciPy (``pip install scipy``).

    See :class:`~corrkit.datasets.base.PairDataset` for the arguments.

    Raises:
        FileNotFoundError: If the split's CSV is missing.
        AnnotationError: If a CSV row or a ``.mat`` file is malformed (the
            message names the file, the row or the field).
    """

    source = PFPASCAL_SOURCE
    METAINFO = dict(classes=PASCAL_CLASSES)

    def load_pairs(self, root: Path) -> list[dict]:
        listing = root / f'{self.split}_pairs.csv'
        rows = csv_rows(listing, lambda row: not parses_as(row[2] if len(row) > 2 else '', int))
        return [self._load_pair(root, listing, line, row) for line, row in rows]

    def _load_pair(self, root: Path, listing: Path, line: int, row: list[str]) -> dict:
        where = f'{listing}, line {line}'
        if (len(row) < 3 or not parses_as(row[2], int)
                or not 1 <= int(row[2]) <= len(PASCAL_CLASSES)):
            raise AnnotationError(f'{where}: expected source path, target path, class 1-20'
                                  f'[, flip], got {row}')
        category = PASCAL_CLASSES[int(row[2]) - 1]
        names = [PurePosixPath(row[i].replace('\\', '/')).name for i in (0, 1)]
        annos = [_read_annotation(root / 'Annotations' / category / f'{Path(n).stem}.mat')
                 for n in names]
        (src_kps, src_box), (trg_kps, trg_box) = annos
        if len(src_kps) != len(trg_kps):
            raise AnnotationError(f'{where}: {names[0]} has {len(src_kps)} keypoints but '
                                  f'{names[1]} has {len(trg_kps)}')
        flip = len(row) > 3 and parses_as(row[3], int) and int(row[3]) == 1
        return make_pair(pair_id=f'{Path(names[0]).stem}-{Path(names[1]).stem}',
                         category=category, src_img_path=root / 'JPEGImages' / names[0],
                         trg_img_path=root / 'JPEGImages' / names[1], src_kps=src_kps,
                         trg_kps=trg_kps, src_bbox=src_box, trg_bbox=trg_box, flip=flip)


def _read_annotation(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    try:
        from scipy.io import loadmat
    except ImportError as err:
        raise ImportError('PF-PASCAL annotations are MATLAB .mat files and need SciPy: '
                          'pip install scipy') from err
    if not path.is_file():
        raise AnnotationError(f"{path}: annotation file does not exist")
    try:
        content = loadmat(str(path))
    except Exception as err:  # SciPy raises several types for broken files
        raise AnnotationError(f'{path}: not a readable .mat file ({err})') from err
    kps = points_field(content, 'kps', path)
    box = content.get('bbox')
    if box is not None:
        box = np.asarray(box, dtype=np.float64).reshape(-1)
        if box.shape != (4,):
            raise AnnotationError(f"{path}: field 'bbox' must have 4 numbers, got {box.size}")
    return kps, box

