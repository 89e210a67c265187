"""COCO keypoints files: read and checked, or written.

The format annotation tools (CVAT, Label Studio, COCO Annotator) export and import:
``images`` (``id``, ``file_name``, ``width``, ``height``), ``categories`` (``id``,
``name``, ``keypoints``: the names, ``skeleton``: 1-based index pairs) and
``annotations`` (``image_id``, ``category_id``, ``keypoints``: ``[x, y, v, ...]``
with ``v = 0`` unlabelled, ``1`` labelled but not visible or uncertain, ``2``
visible; optional ``bbox`` ``[x, y, w, h]``). Coordinates are in the image's
pixels as written by the tool; corrkit reads them with its own convention
(pixel centres at integer coordinates, see :mod:`corrkit.ops.coords`), which is
what COCO's keypoint evaluation and most tools assume for keypoints.

Every problem is a :class:`~corrkit.errors.AnnotationError` (a ``ValueError``)
that names the file, the entry and the key, and what was expected.
"""
from __future__ import annotations

import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from ..errors import AnnotationError
from ..utils.fileio import inside_root

__all__ = ['CocoImage', 'KeypointCategory', 'KeypointInstance', 'KeypointsFile',
           'keypoints_document', 'read_coco_images', 'read_coco_keypoints']

#: Largest COCO file read (bytes): far above any annotation export, below a memory hazard.
MAX_FILE_BYTES = 1 << 30


@dataclass(frozen=True)
class CocoImage:
    """One entry of ``images``.

    Attributes:
        id: The image id annotations refer to.
        file_name: Path as written in the file (relative to the images' root).
        width: Width in pixels, or None when the file does not say.
        height: Height in pixels, or None when the file does not say.
    """

    id: int
    file_name: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class KeypointCategory:
    """One entry of ``categories``.

    Attributes:
        id: Category id.
        name: Category name.
        keypoints: The keypoints' names, in the order of the annotations' triplets.
        skeleton: Pairs of keypoints joined in drawings, **0-based** (the file's are 1-based).
        supercategory: As written, or ``''``.
    """

    id: int
    name: str
    keypoints: tuple[str, ...]
    skeleton: tuple[tuple[int, int], ...] = ()
    supercategory: str = ''

    def to_json(self) -> dict:
        """The category as COCO writes it (1-based skeleton)."""
        return {'id': self.id, 'name': self.name, 'supercategory': self.supercategory,
                'keypoints': list(self.keypoints),
                'skeleton': [[a + 1, b + 1] for a, b in self.skeleton]}


@dataclass(frozen=True)
class KeypointInstance:
    """One entry of ``annotations``.

    Attributes:
        id: Annotation id (None when the file has none).
        image_id: The image it annotates.
        category_id: Its category.
        keypoints: ``(K, 3)`` float64 rows ``(x, y, v)``.
        bbox: ``[x, y, w, h]`` float64, or None.
        index: Position in the file's ``annotations`` list (for messages).
    """

    id: int | None
    image_id: int
    category_id: int
    keypoints: np.ndarray = field(repr=False)
    bbox: np.ndarray | None = None
    index: int = 0

    @property
    def labelled(self) -> np.ndarray:
        """``(K,)`` bool: the keypoints with ``v > 0``."""
        return self.keypoints[:, 2] > 0


@dataclass
class KeypointsFile:
    """A checked COCO keypoints file.

    Attributes:
        path: Where it was read from.
        images: By id, in file order.
        categories: By id, in file order.
        annotations: In file order.
    """

    path: Path
    images: dict[int, CocoImage]
    categories: dict[int, KeypointCategory]
    annotations: list[KeypointInstance]

    def image_path(self, image: CocoImage, root: str | os.PathLike | None = None) -> Path:
        """Where an image's file is: its ``file_name`` under ``root`` (default: the JSON's
        folder).

        Raises:
            AnnotationError: If the name is absolute or leaves ``root`` (``..``).
        """
        return inside_root(Path(root) if root is not None else self.path.parent,
                           image.file_name, self.path)

    def instances_of(self, image_id: int) -> list[KeypointInstance]:
        """The annotations of one image, in file order."""
        return [a for a in self.annotations if a.image_id == image_id]

    def category_named(self, name: str) -> KeypointCategory:
        """The category called ``name``.

        Raises:
            KeyError: If there is none (the message lists the names there are).
        """
        for category in self.categories.values():
            if category.name == name:
                return category
        raise KeyError(f"'{self.path}' has no category {name!r}; it has "
                       f'{sorted(c.name for c in self.categories.values())}')


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"COCO file '{path}' does not exist")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise AnnotationError(f"'{path}' is {path.stat().st_size} bytes, more than a COCO file "
                              f'corrkit reads ({MAX_FILE_BYTES})')
    try:
        return json.loads(path.read_text(encoding='utf-8-sig'))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise AnnotationError(f"'{path}' is not a JSON file ({type(err).__name__}: "
                              f'{str(err)[:120]})') from err


def _where(path: Path, kind: str, index: int, entry: Any) -> str:
    ident = entry.get('id') if isinstance(entry, dict) else None
    return f"'{path}', {kind}[{index}]" + (f' (id {ident!r})' if ident is not None else '')


def _int(value: Any, where: str, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not float(value).is_integer():
        raise AnnotationError(f'{where}: {key!r} must be an integer, got {value!r}')
    return int(value)


def _entries(data: dict, key: str, path: Path, required: bool) -> list:
    if key not in data:
        if required:
            raise AnnotationError(f"'{path}': no {key!r} list; a COCO keypoints file has "
                                  f"'images', 'categories' and 'annotations'")
        return []
    value = data[key]
    if not isinstance(value, list):
        raise AnnotationError(f"'{path}': {key!r} must be a list, got {type(value).__name__}")
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise AnnotationError(f"'{path}', {key}[{index}]: expected an object, got "
                                  f'{type(entry).__name__}')
    return value


def _images(data: dict, path: Path) -> dict[int, CocoImage]:
    images: dict[int, CocoImage] = {}
    for index, entry in enumerate(_entries(data, 'images', path, required=True)):
        where = _where(path, 'images', index, entry)
        if 'id' not in entry or 'file_name' not in entry:
            raise AnnotationError(f"{where}: an image needs 'id' and 'file_name'")
        ident = _int(entry['id'], where, 'id')
        name = entry['file_name']
        if not isinstance(name, str) or not name.strip():
            raise AnnotationError(f"{where}: 'file_name' must be a non-empty string, "
                                  f'got {name!r}')
        if ident in images:
            raise AnnotationError(f'{where}: image id {ident} appears twice')
        size = [None if entry.get(k) is None else _int(entry[k], where, k)
                for k in ('width', 'height')]
        if any(s is not None and s <= 0 for s in size):
            raise AnnotationError(f"{where}: 'width' and 'height' must be positive, got {size}")
        images[ident] = CocoImage(ident, name, *size)
    return images


def _categories(data: dict, path: Path) -> dict[int, KeypointCategory]:
    categories: dict[int, KeypointCategory] = {}
    for index, entry in enumerate(_entries(data, 'categories', path, required=True)):
        where = _where(path, 'categories', index, entry)
        if 'id' not in entry or 'name' not in entry:
            raise AnnotationError(f"{where}: a category needs 'id' and 'name'")
        ident = _int(entry['id'], where, 'id')
        names = entry.get('keypoints')
        if not isinstance(names, list) or not names or \
                not all(isinstance(n, str) for n in names):
            raise AnnotationError(f"{where}: 'keypoints' must be a non-empty list of keypoint "
                                  f'names, got {str(names)[:80]}')
        if len(set(names)) != len(names):
            raise AnnotationError(f"{where}: 'keypoints' names a keypoint twice: {names}")
        skeleton = []
        for edge in entry.get('skeleton') or []:
            if not (isinstance(edge, list) and len(edge) == 2 and
                    all(not isinstance(e, bool) and isinstance(e, int) and 1 <= e <= len(names)
                        for e in edge)):
                raise AnnotationError(f"{where}: 'skeleton' must hold [a, b] pairs of 1-based "
                                      f'keypoint numbers from 1 to {len(names)}, got {edge!r}')
            skeleton.append((edge[0] - 1, edge[1] - 1))
        if ident in categories:
            raise AnnotationError(f'{where}: category id {ident} appears twice')
        if any(c.name == str(entry['name']) for c in categories.values()):
            raise AnnotationError(f"{where}: category name {entry['name']!r} appears twice "
                                  f'(categories are told apart by name)')
        categories[ident] = KeypointCategory(ident, str(entry['name']), tuple(names),
                                             tuple(skeleton), str(entry.get('supercategory', '')))
    return categories


def _numbers(value: Any, where: str, key: str) -> np.ndarray:
    if not isinstance(value, list) or \
            not all(not isinstance(v, bool) and isinstance(v, (int, float)) for v in value):
        raise AnnotationError(f'{where}: {key!r} must be a list of numbers, got '
                              f'{str(value)[:80]}')
    numbers = np.asarray(value, dtype=np.float64)
    if not np.isfinite(numbers).all():
        raise AnnotationError(f'{where}: {key!r} holds a value that is not finite')
    return numbers


def _annotations(data: dict, path: Path, images: Mapping[int, CocoImage],
                 categories: Mapping[int, KeypointCategory]) -> list[KeypointInstance]:
    out = []
    for index, entry in enumerate(_entries(data, 'annotations', path, required=True)):
        where = _where(path, 'annotations', index, entry)
        for key in ('image_id', 'category_id', 'keypoints'):
            if key not in entry:
                raise AnnotationError(f'{where}: missing {key!r}')
        image_id = _int(entry['image_id'], where, 'image_id')
        category_id = _int(entry['category_id'], where, 'category_id')
        if image_id not in images:
            raise AnnotationError(f"{where}: 'image_id' {image_id} is not in 'images'")
        if category_id not in categories:
            raise AnnotationError(f"{where}: 'category_id' {category_id} is not in 'categories'")
        category = categories[category_id]
        flat = _numbers(entry['keypoints'], where, 'keypoints')
        expected = 3 * len(category.keypoints)
        if flat.size != expected:
            raise AnnotationError(f"{where}: 'keypoints' has {flat.size} numbers; category "
                                  f'{category.name!r} names {len(category.keypoints)} keypoints, '
                                  f'so {expected} ([x, y, v] each) were expected')
        kps = flat.reshape(-1, 3)
        if not np.isin(kps[:, 2], (0, 1, 2)).all():
            raise AnnotationError(f"{where}: 'keypoints' visibility flags must be 0, 1 or 2, got "
                                  f'{sorted(set(kps[:, 2].tolist()))}')
        bbox = None
        if entry.get('bbox') is not None:
            bbox = _numbers(entry['bbox'], where, 'bbox')
            if bbox.shape != (4,) or bbox[2] <= 0 or bbox[3] <= 0:
                raise AnnotationError(f"{where}: 'bbox' must be [x, y, width, height] with a "
                                      f'positive width and height, got {bbox.tolist()}')
        ident = entry.get('id')
        out.append(KeypointInstance(None if ident is None else _int(ident, where, 'id'),
                                    image_id, category_id, kps, bbox, index))
    return out


def read_coco_keypoints(path: str | os.PathLike) -> KeypointsFile:
    """Read and check a COCO keypoints file.

    Args:
        path: The JSON file.

    Returns:
        A :class:`KeypointsFile`.

    Raises:
        FileNotFoundError: If the file does not exist.
        AnnotationError: If it is not JSON or not a COCO keypoints file: the message
            names the file, the entry (``annotations[3] (id 17)``), the key and
            what was expected (a category's keypoint count, a known image id, ...).

    Examples:
        >>> import tempfile
        >>> doc = {'images': [{'id': 1, 'file_name': 'a.jpg', 'width': 64, 'height': 48}],
        ...        'categories': [{'id': 1, 'name': 'face', 'keypoints': ['eye', 'nose'],
        ...                        'skeleton': [[1, 2]]}],
        ...        'annotations': [{'id': 5, 'image_id': 1, 'category_id': 1,
        ...                         'keypoints': [10, 12, 2, 30, 20, 0]}]}
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = Path(tmp, 'refs.json')
        ...     _ = path.write_text(json.dumps(doc))
        ...     coco = read_coco_keypoints(path)
        >>> coco.categories[1].skeleton, coco.annotations[0].labelled.tolist()
        (((0, 1),), [True, False])
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(f"'{path}' must hold a JSON object with 'images', 'categories' "
                              f"and 'annotations', got a {type(data).__name__}")
    images = _images(data, path)
    categories = _categories(data, path)
    return KeypointsFile(path, images, categories,
                         _annotations(data, path, images, categories))


def read_coco_images(path: str | os.PathLike) -> list[CocoImage]:
    """The ``images`` of a COCO file (of any kind: keypoints, detection, captions).

    Raises:
        FileNotFoundError: If the file does not exist.
        AnnotationError: If it is not JSON or its ``images`` are malformed.
    """
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(f"'{path}' must hold a JSON object with an 'images' list, got a "
                              f'{type(data).__name__}')
    return list(_images(data, path).values())


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def keypoints_document(images: Iterable[CocoImage], categories: Iterable[KeypointCategory],
                       annotations: Sequence[Mapping[str, Any]],
                       info: Mapping[str, Any] | None = None) -> dict:
    """A COCO keypoints file as a dict, ready for ``json.dump``.

    Args:
        images: The images (their ``width`` and ``height`` are written when known).
        categories: The categories (skeletons are written 1-based).
        annotations: Annotation dicts, written as given with an ``id`` (1, 2, ...,
            skipping the ids given) added where they have none.
        info: Optional ``info`` block (COCO's description, version, date); an empty
            one is written without it (pycocotools 2.0.9 and 2.0.10 need the key).

    Examples:
        >>> doc = keypoints_document([CocoImage(1, 'a.jpg', 64, 48)],
        ...                          [KeypointCategory(1, 'face', ('eye',), ())],
        ...                          [{'image_id': 1, 'category_id': 1, 'keypoints': [1, 2, 2]}])
        >>> doc['annotations'][0]['id'], doc['categories'][0]['skeleton']
        (1, [])
    """
    out_images = []
    for image in images:
        entry = {'id': image.id, 'file_name': image.file_name}
        if image.width is not None and image.height is not None:
            entry.update(width=image.width, height=image.height)
        out_images.append(entry)
    # ids must stay unique: COCO readers (pycocotools) index annotations by id
    taken = {a['id'] for a in annotations if a.get('id') is not None}
    free = (n for n in itertools.count(1) if n not in taken)
    out_annotations = []
    for annotation in annotations:
        entry = dict(annotation)
        if entry.get('id') is None:
            entry['id'] = next(free)
        out_annotations.append(entry)
    doc = {'images': out_images, 'categories': [c.to_json() for c in categories],
           'annotations': out_annotations}
    return {'info': dict(info or {}), **doc}
