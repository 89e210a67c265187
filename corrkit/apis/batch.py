"""Matching many pairs: read a list of pairs, match each, write one result per pair, resumably.

Behind ``corrkit match-pairs``. Each finished pair is written atomically as
``<id>.json`` and ``<id>.csv``, and its JSON records what produced it (the
images' and the keypoint file's paths and SHA-256, the model's config and
weights, the precision: :class:`RunInputs`). An interrupted run resumes where
it stopped: a pair is skipped only when its result records exactly the same
inputs, otherwise it is matched again and reported as replaced. A pair that
fails (a missing or unreadable image, a bad keypoint file, points outside the
image, an error writing its files) is reported by its id and the others go on.
Each image is decoded and encoded once per run, however many pairs it is part of
(:class:`FeatureCache`). The temporaries of a killed run's writes are removed when
the next run starts (those of a run still writing are kept).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import sys
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import torch

from ..errors import USER_ERRORS
from ..models.base import ImageFeatures
from ..utils.acceleration import autocast
from ..utils.fileio import atomic_path, sha256_of, stale_temporaries
from ..utils.image import load_image
from ..utils.text import first_line
from .inference import as_points, encode_images
from .points import check_inside, read_keypoints, source_grid

__all__ = ['BatchReport', 'FeatureCache', 'ImagePair', 'capped_id', 'match_pairs',
           'model_fingerprint', 'pair_inputs', 'read_pairs', 'recorded_inputs',
           'remove_stale_temporaries', 'unique_id', 'IMAGE_SUFFIXES']

#: What counts as an image when two folders are paired by file name.
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
#: Ids no pair gets: the results folder's own files.
RESERVED_IDS = ('summary',)


@dataclass(frozen=True)
class ImagePair:
    """One pair to match.

    Attributes:
        id: The results' file name (``<id>.json``), unique within a list.
        source: Source image path.
        target: Target image path.
        kps: Optional keypoint file (JSON or CSV, see
            :func:`~corrkit.apis.points.read_keypoints`); an 8 × 8 grid otherwise.
    """

    id: str
    source: Path
    target: Path
    kps: Path | None = None


@dataclass
class BatchReport:
    """What :func:`match_pairs` did: ids matched now, skipped (done before, from the same
    inputs), failed, and, among the matched, those whose earlier result came from other
    inputs and was replaced."""

    matched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    replaced: list[str] = field(default_factory=list)


def read_pairs(spec: Sequence[str | os.PathLike]) -> list[ImagePair]:
    """The pairs a user names: a CSV or JSON list, or two folders paired by file name.

    - ``pairs.csv``: rows ``source,target[,kps]``, an optional header row
      starting with ``source``; relative paths are relative to the file's folder.
    - ``pairs.json``: a list of ``{"source": ..., "target": ..., "kps": ...}``
      objects or ``[source, target]`` lists; paths as for CSV.
    - ``SRC_DIR TRG_DIR``: every image of ``SRC_DIR`` with the image of the same
      name (stem) in ``TRG_DIR``.

    Args:
        spec: One list file, or two folders.

    Returns:
        The pairs in order, with unique ids (``<source stem>__<target stem>``, or
        the shared stem for folders; ``_2``, ``_3``, ... appended to repeats and to
        ``summary``, the name of the results' own summary).

    Raises:
        FileNotFoundError: If a list file or folder does not exist.
        ValueError: If the list cannot be read (the message names the file and
            row), the spec is neither form, two folders share no name, or one
            folder has two images of the same name.
    """
    paths = [Path(p) for p in spec]
    if len(paths) == 2 and all(p.is_dir() for p in paths):
        return _folder_pairs(*paths)
    if len(paths) != 1:
        raise ValueError(f'give one pair list (.csv or .json) or two folders, got '
                         f'{[os.fspath(p) for p in paths]}')
    path = paths[0]
    if not path.is_file():
        raise FileNotFoundError(f"pair list '{path}' does not exist")
    rows = _json_rows(path) if path.suffix.lower() == '.json' else _csv_rows(path)
    pairs, taken = [], set(RESERVED_IDS)
    for source, target, kps in rows:
        source, target = path.parent / source, path.parent / target
        pair_id = unique_id(capped_id(f'{source.stem}__{target.stem}'), taken)
        pairs.append(ImagePair(pair_id, source, target, path.parent / kps if kps else None))
    return pairs


def unique_id(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``, ... : the first not in ``taken`` (then added).

    Examples:
        >>> taken = {'summary'}
        >>> [unique_id(name, taken) for name in ('a', 'a', 'summary')]
        ['a', 'a_2', 'summary_2']
    """
    pair_id, number = base, 1
    while pair_id in taken:
        number += 1
        pair_id = f'{base}_{number}'
    taken.add(pair_id)
    return pair_id


def _csv_rows(path: Path) -> list[tuple[str, str, str | None]]:
    # utf-8-sig: a list saved by a spreadsheet may start with a byte-order mark
    rows = [r for r in csv.reader(io.StringIO(path.read_text(encoding='utf-8-sig'))) if r]
    if rows and rows[0][0].strip().lower() == 'source':
        rows = rows[1:]
    out = []
    for number, row in enumerate(rows, 1):
        cells = [c.strip() for c in row]
        if len(cells) not in (2, 3) or not all(cells[:2]):
            raise ValueError(f"'{path}', row {number}: expected source,target[,kps], got {row}")
        out.append((cells[0], cells[1], cells[2] if len(cells) == 3 and cells[2] else None))
    return out


def _json_rows(path: Path) -> list[tuple[str, str, str | None]]:
    try:
        data = json.loads(path.read_text(encoding='utf-8-sig'))
    except json.JSONDecodeError as err:
        raise ValueError(f"'{path}' is not valid JSON ({err})") from err
    if not isinstance(data, list):
        raise ValueError(f"'{path}' must hold a list of pairs, got {type(data).__name__}")
    out = []
    for number, item in enumerate(data, 1):
        if isinstance(item, dict) and {'source', 'target'} <= item.keys():
            out.append((str(item['source']), str(item['target']),
                        str(item['kps']) if item.get('kps') else None))
        elif isinstance(item, list) and len(item) == 2:
            out.append((str(item[0]), str(item[1]), None))
        else:
            raise ValueError(f"'{path}', pair {number}: expected {{\"source\": ..., "
                             f'"target": ...}} or [source, target], got {item!r}')
    return out


def _folder_pairs(src_dir: Path, trg_dir: Path) -> list[ImagePair]:
    def images(folder: Path) -> dict[str, Path]:
        found: dict[str, Path] = {}
        for p in sorted(folder.iterdir()):
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES:
                if p.stem in found:
                    raise ValueError(f"'{found[p.stem]}' and '{p}' share the name '{p.stem}'; "
                                     f'pairs are matched by name without the suffix')
                found[p.stem] = p
        return found
    sources, targets = images(src_dir), images(trg_dir)
    common = [stem for stem in sources if stem in targets]
    if not common:
        raise ValueError(f"folders '{src_dir}' ({len(sources)} images) and '{trg_dir}' "
                         f'({len(targets)} images) share no file name; pairs are matched by '
                         f'name without the suffix')
    taken = set(RESERVED_IDS)
    return [ImagePair(unique_id(capped_id(stem), taken), sources[stem], targets[stem])
            for stem in common]


#: Longest pair id in UTF-8 bytes: with a repeat suffix and ``.json``, far below the 255
#: bytes file systems allow for a name.
MAX_ID_BYTES = 120


def capped_id(base: str) -> str:
    """``base``, or a readable prefix of it and a short hash of the whole when it is longer
    than :data:`MAX_ID_BYTES`.

    Examples:
        >>> capped_id('a__b')
        'a__b'
        >>> long = capped_id('x' * 300)
        >>> len(long.encode()), long[-9:] == '-' + hashlib.sha256(b'x' * 300).hexdigest()[:8]
        (120, True)
    """
    raw = base.encode()
    if len(raw) <= MAX_ID_BYTES:
        return base
    prefix = raw[:MAX_ID_BYTES - 9].decode('utf-8', errors='ignore')
    return prefix + '-' + hashlib.sha256(raw).hexdigest()[:8]


def match_pairs(model: torch.nn.Module, pairs: Sequence[ImagePair], out_dir: str | os.PathLike,
                precision: str = 'fp32', progress: bool = True,
                on_error: Callable[[str, str], None] | None = None) -> BatchReport:
    """Match every pair and write ``<id>.json`` and ``<id>.csv`` into ``out_dir``.

    A pair whose JSON records the same inputs as now (:func:`pair_inputs`) is
    skipped (a rerun resumes); one whose JSON records other inputs is matched
    again and listed as replaced. A pair that raises a user error (missing or
    unreadable image, bad keypoints, points outside the image, a file that
    cannot be written) is recorded with its message and the next pair follows.
    The JSON holds the paths, ``src_kps``, ``trg_kps``, ``confidence`` and
    ``inputs``; the CSV one row ``src_x,src_y,trg_x,trg_y,confidence`` per
    point, in pixels of the images as given. ``summary.json`` lists what was
    matched, skipped, replaced and failed.

    Args:
        model: A matcher from :func:`~corrkit.apis.init_matcher`.
        pairs: From :func:`read_pairs`.
        out_dir: Results folder (created).
        precision: As in :func:`~corrkit.apis.match_pair`.
        progress: Show a progress bar with the time left (on stderr).
        on_error: Called as ``on_error(pair_id, message)`` when a pair fails.

    Returns:
        A :class:`BatchReport`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out)
    report = BatchReport()

    def fail(pair_id: str, err: BaseException) -> None:
        message = first_line(err) or type(err).__name__
        report.failed[pair_id] = message
        if on_error is not None:
            on_error(pair_id, message)

    model_inputs = model_fingerprint(model) if pairs else {}
    todo = []
    for pair in pairs:
        try:
            inputs = pair_inputs(pair, model_inputs, precision)
            recorded = recorded_inputs(out / f'{pair.id}.json')
        except USER_ERRORS as err:
            fail(pair.id, err)
            continue
        if recorded == inputs:
            report.skipped.append(pair.id)
            continue
        if recorded is not None:
            report.replaced.append(pair.id)
        todo.append((pair, inputs))
    cache = FeatureCache(model, precision, [p for pair, _ in todo
                                            for p in (pair.source, pair.target)],
                         mirrored={pair.source for pair, _ in todo}
                         if model.mirrors_source else ())
    bar = _progress_bar(len(todo)) if progress and todo else None
    for pair, inputs in todo:
        try:
            _match_one(model, pair, out, precision, cache, inputs)
            report.matched.append(pair.id)
        except USER_ERRORS as err:
            fail(pair.id, err)
        finally:
            cache.release(pair.source, pair.target)
        if bar is not None:
            bar.update()
    if bar is not None:
        sys.stderr.write('\n')
    with atomic_path(out / 'summary.json') as tmp:
        tmp.write_text(json.dumps({'matched': report.matched, 'skipped': report.skipped,
                                   'replaced': report.replaced, 'failed': report.failed},
                                  indent=1))
    return report


def remove_stale_temporaries(out: Path) -> None:
    """Remove the temporaries that a killed run's atomic writes left in ``out``: those whose
    writer (the process id in the name, see :func:`~corrkit.utils.fileio.atomic_path`) is
    gone; a run writing into the same folder now keeps its own."""
    for tmp in stale_temporaries(out, '*.json') + stale_temporaries(out, '*.csv'):
        try:
            pid = int(tmp.name.rsplit('.', 3)[1])
            os.kill(pid, 0)  # raises if no such process
        except ProcessLookupError:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # not ours to remove: it stays, harmless
                pass
        except (ValueError, IndexError, OSError):  # not ours, or a live writer of another user
            continue


def model_fingerprint(model: torch.nn.Module) -> dict:
    """What identifies a matcher's results: its config (name and SHA-256 of its text) and
    the SHA-256 of its weights (every state-dict entry, names included).

    Examples:
        >>> a = model_fingerprint(torch.nn.Linear(2, 2))
        >>> b = model_fingerprint(torch.nn.Linear(2, 2))  # other random weights
        >>> a['weights_sha256'] != b['weights_sha256'], a['config'] is None
        (True, True)
    """
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        raw = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(raw.view(torch.uint8).numpy().tobytes() if raw.numel() else b'')
    cfg = getattr(model, 'cfg', None)
    text = getattr(cfg, 'pretty_text', None)
    return {'config': getattr(cfg, 'filename', None),
            'config_sha256': None if text is None else hashlib.sha256(text.encode()).hexdigest(),
            'weights_sha256': digest.hexdigest()}


def pair_inputs(pair: ImagePair, model: dict, precision: str) -> dict:
    """Everything a pair's result depends on: both images' and the keypoint file's paths and
    SHA-256 (no keypoint file: the default grid), the model's fingerprint, the precision.

    Raises:
        FileNotFoundError: If an image or the keypoint file does not exist.
    """
    def file(path: Path | None) -> dict | None:
        if path is None:
            return None
        if not path.is_file():
            raise FileNotFoundError(f"'{path}' does not exist")
        return {'path': os.fspath(path), 'sha256': sha256_of(path)}

    return {'source': file(pair.source), 'target': file(pair.target), 'kps': file(pair.kps),
            'model': model, 'precision': precision}


def recorded_inputs(result: Path) -> dict | None:
    """The ``inputs`` a result file records; ``None`` if there is no readable result (or
    it predates the record, so it is matched again)."""
    if not result.is_file():
        return None
    try:
        return json.loads(result.read_text(encoding='utf-8')).get('inputs')
    except (ValueError, AttributeError):  # half a file from an older writer, not a dict
        return None


class FeatureCache:
    """Each image of a run decoded and encoded once, kept until its last pair is matched.

    The run announces every use of every image; features are dropped after the
    last one, so a list where each image appears once holds one pair's features
    at a time. At most ``max_images`` are kept whatever the order (the least
    recently used go first and are encoded again if needed).

    Args:
        model: The matcher.
        precision: As in :func:`~corrkit.apis.match_pair`.
        uses: Every image path, once per pair that uses it.
        mirrored: The paths to encode with their mirrored maps (sources of a
            matcher that ``mirrors_source``).
        max_images: Most images whose features are kept at once.
    """

    def __init__(self, model: torch.nn.Module, precision: str, uses: Iterable[Path],
                 mirrored: Iterable[Path] = (), max_images: int = 64):
        if max_images < 1:
            raise ValueError(f'FeatureCache keeps at least one image, got max_images={max_images}')
        self.model, self.precision, self.max_images = model, precision, max_images
        self.remaining = Counter(_key(p) for p in uses)
        self.mirrored = {_key(p) for p in mirrored}
        self.kept: OrderedDict[str, ImageFeatures] = OrderedDict()
        self.encoded = 0  #: images sent through the backbone so far

    def get(self, path: Path) -> ImageFeatures:
        """The features of an image, encoded at the first request.

        Raises:
            FileNotFoundError, ValueError: If the image cannot be read.
        """
        key = _key(path)
        if key not in self.kept:
            image = load_image(path)
            self.kept[key] = encode_images(self.model, [image], self.precision,
                                           mirrored=key in self.mirrored)
            self.encoded += 1
            while len(self.kept) > self.max_images:
                self.kept.popitem(last=False)
        self.kept.move_to_end(key)
        return self.kept[key]

    def release(self, *paths: Path) -> None:
        """One use of each image is done; an image with none left is dropped."""
        for path in paths:
            key = _key(path)
            self.remaining[key] -= 1
            if self.remaining[key] <= 0:
                self.kept.pop(key, None)


def _key(path: Path) -> str:
    return os.path.realpath(path)


def _progress_bar(total: int):
    from mmengine.utils import ProgressBar  # prints done/total, pairs per second, ETA
    return ProgressBar(total, file=sys.stderr)


@torch.inference_mode()
def _match_one(model: torch.nn.Module, pair: ImagePair, out: Path, precision: str,
               cache: FeatureCache, inputs: dict) -> None:
    kps = read_keypoints(pair.kps) if pair.kps else None  # a bad file costs no encoding
    src, trg = cache.get(pair.source), cache.get(pair.target).without_mirrored()
    height, width = src.frames[0].size
    if kps is not None:
        check_inside(kps, (height, width), f"keypoints '{pair.kps}'")
    else:
        kps = source_grid(height, width)
    kps = as_points(kps)
    with autocast(precision, src.maps[0].device):
        found = model.match_points(src, kps[None], trg)
    trg_kps, confidence = (t[0].float().cpu() for t in (found.trg_kps, found.confidence))
    rows = torch.cat([kps, trg_kps, confidence[:, None]], 1).tolist()
    with atomic_path(out / f'{pair.id}.csv') as tmp:
        with open(tmp, 'w', newline='') as f:
            writer = csv.writer(f)
            writer.writerow(['src_x', 'src_y', 'trg_x', 'trg_y', 'confidence'])
            writer.writerows([[round(v, 3) for v in row] for row in rows])
    with atomic_path(out / f'{pair.id}.json') as tmp:  # written last: it marks the pair done
        tmp.write_text(json.dumps({
            'source': os.fspath(pair.source), 'target': os.fspath(pair.target),
            'src_kps': kps.tolist(), 'trg_kps': trg_kps.tolist(),
            'confidence': confidence.tolist(), 'inputs': inputs}, indent=1))
