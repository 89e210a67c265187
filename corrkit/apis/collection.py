"""The inputs of a keypoint transfer (labelled references, target images) and its report.

References come from a COCO keypoints file (:mod:`corrkit.coco`): every annotated
instance with at least one labelled keypoint is one reference, cropped to its box
(with a margin) when it has one. Targets are named the way users have them: image
files, folders, text files listing paths, COCO files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from ..coco import KeypointCategory, KeypointsFile, read_coco_images, read_coco_keypoints
from ..errors import AnnotationError
from ..utils.fileio import inside_root
from .batch import IMAGE_SUFFIXES, RESERVED_IDS, capped_id, unique_id

__all__ = ['EDGE_TOLERANCE', 'Reference', 'TransferReport', 'inside_image', 'read_references', 'read_targets', 'relative_name',
           'target_ids']

#: Margin around a reference's box, as a fraction of its longer side, on each side.
BOX_MARGIN = 0.1


@dataclass(frozen=True)
class Reference:
    """One labelled instance, the unit a target is matched from.

    Attributes:
        image: The reference image file.
        image_id: Its id in the COCO file.
        annotation: The annotation's position in the file's ``annotations``.
        category: Its category.
        keypoints: ``(K, 3)`` ``(x, y, v)`` in the image's pixels.
        crop: ``(x0, y0, x1, y1)`` integer pixel bounds of the region encoded (the
            box with its margin, the whole image without a box; ``x1`` exclusive),
            or None for the whole image.
        scale: The instance's size in pixels (its box's longer side; without a box,
            the labelled keypoints' extent, at least a tenth of the image).
    """

    image: Path
    image_id: int
    annotation: int
    category: KeypointCategory
    keypoints: np.ndarray
    crop: tuple[int, int, int, int] | None
    scale: float

    @property
    def labelled(self) -> np.ndarray:
        """``(K,)`` bool: keypoints this reference transfers (``v > 0``)."""
        return self.keypoints[:, 2] > 0

    def crop_points(self) -> np.ndarray:
        """``(K, 2)`` the keypoints in the pixels of the encoded region."""
        points = self.keypoints[:, :2].copy()
        if self.crop is not None:
            points -= np.asarray(self.crop[:2], dtype=np.float64)
        return points


#: How far past the image's edge (pixels) a labelled keypoint may lie and be moved onto it:
#: annotation tools clamp clicks to [0, W], half a pixel past the last pixel centre.
EDGE_TOLERANCE = 1.0


def inside_image(keypoints: np.ndarray, size: tuple[int, int], where: str) -> np.ndarray:
    """Labelled keypoints kept on the image: those within :data:`EDGE_TOLERANCE` of its
    edge are moved onto it (pixel centres span ``[-0.5, W - 0.5]``).

    Args:
        keypoints: ``(K, 3)`` ``(x, y, v)``.
        size: ``(H, W)`` of the image.
        where: What the keypoints are, for the message.

    Returns:
        A copy, clamped.

    Raises:
        AnnotationError: If a labelled keypoint lies further outside.

    Examples:
        >>> inside_image(np.array([[96.0, 30.0, 2.0]]), (80, 96), 'x')[0].tolist()
        [95.5, 30.0, 2.0]
    """
    height, width = size
    labelled = keypoints[:, 2] > 0
    low, high = -0.5 - EDGE_TOLERANCE, np.array([width, height]) - 0.5 + EDGE_TOLERANCE
    points = keypoints[labelled, :2]
    if (points < low).any() or (points > high).any():
        raise AnnotationError(f'{where}: a labelled keypoint lies outside its image '
                              f'({width} x {height}): {points.round(1).tolist()}')
    out = keypoints.copy()
    out[labelled, 0] = out[labelled, 0].clip(-0.5, width - 0.5)
    out[labelled, 1] = out[labelled, 1].clip(-0.5, height - 0.5)
    return out


def _crop(box: np.ndarray, kps: np.ndarray, size: tuple[int, int] | None,
          margin: float) -> tuple[int, int, int, int]:
    """Integer bounds around the box and the labelled points, grown by ``margin``."""
    x0, y0 = min(box[0], kps[:, 0].min()), min(box[1], kps[:, 1].min())
    x1, y1 = max(box[0] + box[2], kps[:, 0].max()), max(box[1] + box[3], kps[:, 1].max())
    grow = margin * max(x1 - x0, y1 - y0)
    bounds = [int(np.floor(x0 - grow)), int(np.floor(y0 - grow)),
              int(np.ceil(x1 + grow)) + 1, int(np.ceil(y1 + grow)) + 1]
    if size is not None:
        height, width = size
        bounds = [max(bounds[0], 0), max(bounds[1], 0), min(bounds[2], width),
                  min(bounds[3], height)]
    return tuple(bounds)


def read_references(path: str | os.PathLike, root: str | os.PathLike | None = None,
                    category: str | None = None, margin: float = BOX_MARGIN
                    ) -> tuple[KeypointsFile, list[Reference]]:
    """The references of a COCO keypoints file.

    Args:
        path: The COCO keypoints file.
        root: Folder the images' ``file_name`` are relative to (default: the
            file's folder); names that leave it are refused.
        category: Only the instances of the category of this name.
        margin: Grow each box by this fraction of its longer side on each side.

    Returns:
        The file and its references in file order (instances with no labelled keypoint
        are left out).

    Raises:
        FileNotFoundError: If the file does not exist.
        AnnotationError: If it is malformed, names no labelled instance (of
            ``category``), or a keypoint lies outside its image (more than
            :data:`EDGE_TOLERANCE` past its edge; those nearer are moved onto it).
        KeyError: If ``category`` is not one of the file's.
    """
    coco = read_coco_keypoints(path)
    wanted = None if category is None else coco.category_named(category).id
    refs = []
    for inst in coco.annotations:
        if (wanted is not None and inst.category_id != wanted) or not inst.labelled.any():
            continue
        image = coco.images[inst.image_id]
        size = (image.height, image.width) if image.width and image.height else None
        keypoints = inst.keypoints
        if size is not None:
            keypoints = inside_image(keypoints, size,
                                     f"'{coco.path}', annotations[{inst.index}]")
        labelled = keypoints[inst.labelled]
        crop, scale = None, None
        if inst.bbox is not None:
            crop = _crop(inst.bbox, labelled, size, margin)
            scale = float(max(inst.bbox[2], inst.bbox[3]))
        else:  # without the image's size the floor waits for the image (transfer reads it)
            extent = labelled[:, :2].max(0) - labelled[:, :2].min(0)
            scale = float(max(extent.max(), 0.1 * max(size) if size else 0.0))
        refs.append(Reference(coco.image_path(image, root), image.id, inst.index,
                              coco.categories[inst.category_id], keypoints, crop, scale))
    if not refs:
        which = f' of category {category!r}' if category else ''
        raise AnnotationError(f"'{coco.path}' has no annotation{which} with a labelled keypoint "
                              f'(v > 0) to transfer')
    return coco, refs


def _listed(path: Path) -> list[Path]:
    out = []
    for number, line in enumerate(path.read_text(encoding='utf-8-sig').splitlines(), 1):
        line = line.strip()
        if line and not line.startswith('#'):
            out.append(path.parent / line)
    if not out:
        raise AnnotationError(f"'{path}' lists no image path (one per line)")
    return out


def read_targets(specs: Sequence[str | os.PathLike]) -> list[Path]:
    """The target images a user names, in order, each once.

    Each spec is an image file, a folder (its images, sorted, not recursive), a
    text file (``.txt``/``.lst``: one path per line, relative to the file's
    folder, ``#`` comments) or a COCO file (``.json``: its ``images``' file
    names, relative to the file's folder and refused if they leave it, as for
    references). A text file is trusted like the command line: its paths may point
    anywhere.

    Raises:
        FileNotFoundError: If a spec does not exist.
        AnnotationError: If a list or COCO file is malformed or names nothing,
            or no image is found at all.
    """
    found: list[Path] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found += sorted(p for p in path.iterdir()
                            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif not path.exists():
            raise FileNotFoundError(f"target '{path}' does not exist")
        elif path.suffix.lower() == '.json':
            # a shared COCO file may name only images beside or below it (as references)
            found += [inside_root(path.parent, image.file_name, path)
                      for image in read_coco_images(path)]
        elif path.suffix.lower() in ('.txt', '.lst'):
            found += _listed(path)
        else:
            found.append(path)
    seen, unique = set(), []
    for path in found:
        key = os.path.realpath(path)
        if key not in seen:
            seen.add(key)
            unique.append(path)
    if not unique:
        raise AnnotationError(f'no target image found in {[os.fspath(s) for s in specs]} '
                              f'(images end in {", ".join(IMAGE_SUFFIXES)})')
    return unique


@dataclass
class TransferReport:
    """What :func:`transfer_keypoints` did.

    Attributes:
        targets: Targets of this run (all ranks).
        done: Ids transferred now (this rank; every rank's on rank 0).
        skipped: Ids done before from the same inputs (likewise).
        replaced: Among ``done``, those whose earlier part came from other inputs.
        failed: Id → message of targets that could not be read (all ranks on rank 0).
        encoded: Images sent through the backbone (references and targets; a
            mirrored encoding counts once more; every rank's on rank 0).
        cache_hits: Images whose features came from the feature cache (likewise).
        accepted: Points accepted in the collection's files (rank 0).
        flagged: Points flagged (rank 0).
        paths: The files written (rank 0).
    """

    targets: int = 0
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    encoded: int = 0
    cache_hits: int = 0
    accepted: int = 0
    flagged: int = 0
    paths: dict[str, Path] = field(default_factory=dict)


def target_ids(targets: Sequence[Path], root: Path) -> list[str]:
    """Each target's part name: its path under ``root`` with ``/`` as ``__``, made unique.

    Examples:
        >>> target_ids([Path('/d/a/x.jpg'), Path('/d/b/x.jpg')], Path('/d'))
        ['a__x.jpg', 'b__x.jpg']
    """
    taken = set(RESERVED_IDS)
    return [unique_id(capped_id(relative_name(p, root).replace('/', '__')), taken)
            for p in targets]


def relative_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root``, with ``/`` (a COCO ``file_name``)."""
    return Path(os.path.relpath(os.path.abspath(path), os.path.abspath(root))).as_posix()
