"""A real-photo check with exact ground truth: the Middlebury motorcycle stereo pair.

scikit-image ships the left and right views of Middlebury 2014's "Motorcycle"
(Scharstein et al., GCPR 2014; rectified, 741 × 500) with the left view's
ground-truth disparity: the left pixel ``(x, y)`` is the right pixel
``(x - d, y)``. :func:`make_stereo_pairs` writes both directions (left → right
and right → left) in SPair-71k's layout, with a grid of keypoints where the
disparity is known and the point is visible in both views, so every matcher,
tool and metric of corrkit runs on real photographs with exact targets.

The motion is horizontal and 7–60 pixels: a matcher that predicts no motion
at all is a baseline worth stating next to any number (see
:func:`zero_motion_pck`). The boxes are the whole images, so PCK's ``bbox``
and ``img`` thresholds both mean a fraction of 741 pixels (``alpha=0.01`` is
7.4 px, ``0.05`` is 37 px).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ...utils.fileio import atomic_folder, package_file

CATEGORY = 'motorcycle'
FILES = {'left': 'data/motorcycle_left.png', 'right': 'data/motorcycle_right.png',
         'disparity': 'data/motorcycle_disp.npz'}
STAMP = 'stereo_pairs.json'
FORMAT_VERSION = 1


def stereo_correspondences(disparity: np.ndarray, step: int = 20, margin: int = 10,
                           tolerance: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Grid points of the left view and their exact positions in the right view.

    A grid point is kept when its disparity is known (finite), its right
    position lies inside the image, and it is visible in the right view: no
    left pixel of the same row that is nearer (a disparity larger by more than
    ``tolerance``) lands within ``tolerance`` pixels of it there.

    Args:
        disparity: The left view's disparity ``(H, W)``, non-finite where unknown.
        step: Grid spacing in pixels.
        margin: Distance of the grid from the image border in pixels.
        tolerance: Pixels within which a nearer surface hides a point.

    Returns:
        ``(left, right)``, two ``(N, 2)`` float arrays of ``(x, y)`` pixels.

    Examples:
        >>> disp = np.full((6, 8), 2.0)
        >>> disp[:, 5:] = 4.0  # a nearer surface on the right hides what lies 2 px left of it
        >>> left, right = stereo_correspondences(disp, step=1, margin=0)
        >>> sorted({int(x) for x in left[:, 0]})
        [2, 5, 6, 7]
        >>> bool((right[:, 0] == left[:, 0] - disp[0, left[:, 0].astype(int)]).all())
        True
    """
    height, width = disparity.shape
    ys = np.arange(margin, height - margin, step)
    xs = np.arange(margin, width - margin, step)
    cols = np.arange(width)
    left, right = [], []
    for y in ys:
        row = disparity[y]
        known = np.isfinite(row)
        landing = cols - np.where(known, row, 0)  # right x of every left pixel of the row
        for x in xs:
            d = row[x]
            if not np.isfinite(d) or not 0 <= x - d <= width - 1:
                continue
            nearer = known & (row > d + tolerance) & (np.abs(landing - (x - d)) < tolerance)
            if nearer.any():
                continue
            left.append((x, y))
            right.append((x - d, y))
    return np.asarray(left, dtype=np.float64), np.asarray(right, dtype=np.float64)


def make_stereo_pairs(out_dir: str | Path = 'data/stereo-motorcycle', step: int = 20,
                      margin: int = 10, overwrite: bool = False) -> Path:
    """Write the motorcycle stereo check (SPair-71k layout, split ``test``) and return its folder.

    Two pairs: ``left → right`` and ``right → left``, with the same
    correspondences (:func:`stereo_correspondences`). The images are copied
    unchanged (PNG). The folder is written to a temporary sibling and renamed
    at the end; a folder made with the same settings is left as it is.

    Args:
        out_dir: Destination folder (``data/`` is git-ignored).
        step: Grid spacing in pixels of the left view.
        margin: Distance of the grid from the border.
        overwrite: Replace an existing, different folder.

    Returns:
        ``out_dir`` as a ``Path``.

    Raises:
        FileExistsError: If ``out_dir`` holds something else and ``overwrite`` is false.
        FileNotFoundError: If scikit-image (the photos) is missing.
    """
    out_dir = Path(out_dir)
    settings = dict(version=FORMAT_VERSION, step=step, margin=margin)
    try:
        if json.loads((out_dir / STAMP).read_text()).get('settings') == settings:
            return out_dir
    except (OSError, ValueError):
        pass
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"'{out_dir}' exists and is not a stereo check made with these "
                              f"settings; pass overwrite=True to replace it "
                              f"(tools/stereo_check.py: choose another --data-root)")
    paths = {name: package_file('skimage', rel) for name, rel in FILES.items()}
    with np.load(paths['disparity']) as data:
        disparity = data['arr_0']
    left, right = stereo_correspondences(disparity, step, margin)
    height, width = disparity.shape
    with atomic_folder(out_dir) as tmp:
        images = tmp / 'JPEGImages' / CATEGORY
        images.mkdir(parents=True)
        for view in ('left', 'right'):
            shutil.copyfile(paths[view], images / f'{CATEGORY}_{view}.png')
        views = {'left': left, 'right': right}
        names = []
        for index, (src, trg) in enumerate((('left', 'right'), ('right', 'left')), 1):
            pair_id = f'{index:06d}-{CATEGORY}_{src}-{CATEGORY}_{trg}:{CATEGORY}'
            record = dict(
                pair_id=pair_id, filename=f'{pair_id}.json', category=CATEGORY,
                src_imname=f'{CATEGORY}_{src}.png', trg_imname=f'{CATEGORY}_{trg}.png',
                src_imsize=[width, height, 3], trg_imsize=[width, height, 3],
                src_bndbox=[0, 0, width, height], trg_bndbox=[0, 0, width, height],
                src_kps=views[src].tolist(), trg_kps=views[trg].tolist(),
                kps_ids=list(range(len(left))), viewpoint_variation=0, scale_variation=0,
                truncation=0, occlusion=0)
            annotation = tmp / 'PairAnnotation' / 'test' / f'{pair_id}.json'
            annotation.parent.mkdir(parents=True, exist_ok=True)
            annotation.write_text(json.dumps(record))
            names.append(pair_id)
        layout = tmp / 'Layout' / 'large' / 'test.txt'
        layout.parent.mkdir(parents=True)
        layout.write_text('\n'.join(names) + '\n')
        (tmp / STAMP).write_text(json.dumps(dict(settings=settings, pairs=len(names),
                                                 keypoints=len(left)), indent=2))
    return out_dir


def zero_motion_pck(root: str | Path, alphas: tuple[float, ...] = (0.01, 0.02, 0.05)
                    ) -> dict[str, float]:
    """PCK (%, per pair, bbox threshold) of predicting every target at its source position.

    The floor a matcher must clear on the stereo check: the true motion is
    horizontal and bounded by the largest disparity.

    Args:
        root: A folder written by :func:`make_stereo_pairs`.
        alphas: Tolerances, fractions of the box's longer side.

    Returns:
        ``{'PCK@<alpha>': percent}``.
    """
    folder = Path(root) / 'PairAnnotation' / 'test'
    scores = {a: [] for a in alphas}
    for path in sorted(folder.glob('*.json')):
        record = json.loads(path.read_text())
        src, trg = np.asarray(record['src_kps']), np.asarray(record['trg_kps'])
        x1, y1, x2, y2 = record['trg_bndbox']
        dist = np.linalg.norm(src - trg, axis=1)
        for a in alphas:
            scores[a].append(100.0 * float((dist <= a * max(x2 - x1, y2 - y1)).mean()))
    return {f'PCK@{a}': float(np.mean(v)) for a, v in scores.items()}
