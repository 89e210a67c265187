"""The review page of a keypoint-transfer run: every target as a thumbnail with its predicted
keypoints, sortable (worst first) and filterable, and a large view beside its best reference."""
from __future__ import annotations

import base64
import html
import io
import json
import math
import os
import pathlib
import re
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from PIL import Image

from ..errors import USER_ERRORS
from ..utils.fileio import atomic_folder, atomic_path
from ..utils.image import load_image
from .display import shrink

__all__ = ['GalleryItem', 'write_gallery']

#: How the page carries its images: embedded in it, or as files in ``<stem>_files/`` beside it.
THUMBNAIL_MODES = ('inline', 'folder')

#: The page template's placeholders, filled in a single pass.
_PLACEHOLDER = re.compile(r'__(TITLE|SUMMARY|DATA)__')


@dataclass
class GalleryItem:
    """One target of the gallery (one target image x one category).

    Coordinates are pixels of the image file as :func:`~corrkit.utils.image.load_image`
    reads it (EXIF orientation applied), pixel centres at integer coordinates: pixel
    ``(0, 0)`` spans ``[-0.5, 0.5]``.

    Attributes:
        target: The target image file.
        title: Shown under the thumbnail (the file name relative to the targets' folder).
        category: The category's name, a key of ``keypoint_names``.
        keypoints: ``(K, 2)`` predicted ``(x, y)``; any value where ``status`` is 0.
        scores: ``(K,)`` in ``[0, 1]``; NaN where ``status`` is 0.
        status: ``(K,)`` int: 0 not predicted (no reference labels it), 1 flagged
            (score below the threshold), 2 accepted.
        score: The instance's score, the gallery's sort key (NaN sorts last).
        reference: The best reference's image file, if any.
        reference_keypoints: ``(K, 2)`` keypoints in pixels of the reference image.
        reference_visible: ``(K,)`` bool: labelled in the reference (all finite points
            when ``None``).
    """

    target: pathlib.Path
    title: str
    category: str
    keypoints: np.ndarray
    scores: np.ndarray
    status: np.ndarray
    score: float
    reference: pathlib.Path | None = None
    reference_keypoints: np.ndarray | None = None
    reference_visible: np.ndarray | None = None


def write_gallery(path: str | os.PathLike, items: Sequence[GalleryItem],
                  keypoint_names: Mapping[str, Sequence[str]],
                  skeletons: Mapping[str, Sequence[tuple[int, int]]], min_score: float,
                  thumbnails: str = 'inline', thumb_size: int = 256,
                  large_size: int = 1024) -> pathlib.Path:
    """Write the HTML page on which a user reviews a keypoint-transfer run.

    The page shows every item as a thumbnail with its points drawn (filled discs
    for accepted points, hollow crossed rings for flagged ones, coloured by score
    from red through yellow to green) and its skeleton, captioned with the title,
    category, score and the counts of accepted and flagged points. It sorts by
    score, worst first by default, or by name, and can show only the targets with
    flagged points. A click (or Enter) opens a large view of the target beside its
    best reference with the keypoint names; Escape or the close button closes it,
    the arrow keys step through the current order. It needs no network: inline
    CSS and JavaScript, the data as JSON in ``<script type="application/json"
    id="corrkit-gallery-data">``.

    Points are drawn on SVG overlays whose ``viewBox`` is each image's own pixel
    frame (``-0.5 -0.5 W H``), so they sit on the predicted pixels at any display
    size. For tests and scripts: each thumbnail is a ``.thumb`` with
    ``data-index`` (the item's position in ``items``), ``data-title``,
    ``data-score`` and ``data-flagged``; each drawn point a ``circle.point`` with
    ``data-name``, ``data-x``, ``data-y``, ``data-status`` (and ``data-score``);
    the large view is ``#large`` with ``data-index``, its panes ``#large-target``
    and ``#large-reference``. ``<body data-ready="true">`` tells that the page is
    built, and ``window.corrkitGallery`` offers ``open(index)``, ``close()`` and
    the ``state``.

    An image that cannot be read shows a placeholder with its file name and the
    error; the rest of the page works. Each image file is read once, however many
    items use it.

    Args:
        path: The HTML file to write (atomically); its folder is created.
        items: The targets, in any order.
        keypoint_names: The ``K`` keypoint names of each category.
        skeletons: Each category's 0-based pairs of keypoints joined by a line (a
            category not in it has none); an edge is drawn where both ends have a
            status above 0.
        min_score: The threshold below which points were flagged (shown in the legend).
        thumbnails: ``'inline'``: one self-contained file, images embedded as
            base64 JPEG. ``'folder'``: JPEG files in ``<stem>_files/`` beside the
            page (replaced as a whole), referenced relatively; for thousands of
            targets.
        thumb_size: Longest side of the thumbnails' JPEGs, in pixels (the grid
            shows them at most 200 CSS pixels wide).
        large_size: Longest side of the large view's JPEGs.

    Returns:
        The path written.

    Raises:
        ValueError: If ``thumbnails`` is not one of :data:`THUMBNAIL_MODES`, a
            size is below 1, ``min_score`` is not finite, or an item does not fit
            its category (unknown category, arrays of the wrong shape, a status
            outside 0-2, a drawn point not finite, a skeleton index outside the
            keypoints); the message names the item.

    Examples:
        >>> import tempfile
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> Image.new('RGB', (64, 48), 'gray').save(folder / 'cat.jpg')
        >>> item = GalleryItem(
        ...     target=folder / 'cat.jpg', title='cat.jpg', category='cat',
        ...     keypoints=np.array([[10.0, 12.0], [40.0, 30.0]]),
        ...     scores=np.array([0.9, 0.2]), status=np.array([2, 1]), score=0.55,
        ...     reference=None, reference_keypoints=None, reference_visible=None)
        >>> out = write_gallery(folder / 'gallery.html', [item], {'cat': ['ear', 'nose']},
        ...                     {'cat': [(0, 1)]}, min_score=0.5)
        >>> out.name, 'id="corrkit-gallery-data"' in out.read_text()
        ('gallery.html', True)
    """
    if thumbnails not in THUMBNAIL_MODES:
        raise ValueError(f"thumbnails must be one of {THUMBNAIL_MODES}, got {thumbnails!r}")
    for name, value in (('thumb_size', thumb_size), ('large_size', large_size)):
        if int(value) < 1:
            raise ValueError(f'{name} must be at least 1, got {value}')
    if not math.isfinite(min_score):
        raise ValueError(f'min_score must be finite, got {min_score}')
    items = list(items)
    categories = _categories(items, keypoint_names, skeletons)
    records = [_item_record(i, item, categories[str(item.category)])
               for i, item in enumerate(items)]
    path = pathlib.Path(path)
    sizes = (int(thumb_size), int(large_size))
    if thumbnails == 'inline':
        images, index = _image_table(items, _embed, sizes)
    else:
        folder = path.with_name(f'{path.stem}_files')
        href = urllib.parse.quote(folder.name)
        with atomic_folder(folder) as tmp:
            images, index = _image_table(items, _file_writer(tmp, href), sizes)
    for record, item in zip(records, items):
        record['target'] = index[_key(item.target)]
        record['reference'] = None if item.reference is None else index[_key(item.reference)]
    data = {'min_score': float(min_score), 'categories': categories, 'images': images,
            'items': records, 'thumb_side': min(int(thumb_size), 200)}
    # '<' escaped so no string in the data can close the <script> block early
    payload = json.dumps(data, separators=(',', ':'), allow_nan=False).replace('<', '\\u003c')
    values = {'TITLE': 'corrkit keypoint transfer: review',
              'SUMMARY': html.escape(_summary(records, min_score)), 'DATA': payload}
    page = _PLACEHOLDER.sub(lambda match: values[match.group(1)], _PAGE)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding='utf-8')
    return path


def _categories(items: list[GalleryItem], keypoint_names: Mapping[str, Sequence[str]],
                skeletons: Mapping[str, Sequence[tuple[int, int]]]) -> dict:
    """The names and skeleton of each category the items use, the skeleton checked."""
    out = {}
    for i, item in enumerate(items):
        name = item.category
        if str(name) in out:  # str: the page's JSON keys are strings
            continue
        if name not in keypoint_names:
            raise ValueError(f'items[{i}] ({item.title!r}) has category {name!r}, which '
                             f'keypoint_names lacks (it has {sorted(keypoint_names)})')
        names = [str(n) for n in keypoint_names[name]]
        edges = [[int(a), int(b)] for a, b in skeletons.get(name, ())]
        bad = [e for e in edges if not all(0 <= v < len(names) for v in e)]
        if bad:
            raise ValueError(f'the skeleton of category {name!r} joins keypoints {bad}, '
                             f'outside its {len(names)} keypoints')
        out[str(name)] = {'names': names, 'skeleton': edges}
    return out


def _item_record(i: int, item: GalleryItem, category: dict) -> dict:
    """An item's entry in the page's data; image indices are filled in by the caller."""
    k, label = len(category['names']), f'items[{i}] ({item.title!r})'
    status = np.asarray(item.status)
    if status.shape != (k,) or not np.isin(status, (0, 1, 2)).all():
        raise ValueError(f'{label}: status must be ({k},) values in 0, 1, 2 (category '
                         f'{item.category!r} has {k} keypoints), got {status.tolist()}')
    status = status.astype(int)
    drawn = status > 0
    points = _checked(label, 'keypoints', item.keypoints, (k, 2), drawn)
    scores = _checked(label, 'scores', item.scores, (k,), drawn)
    record = {'title': str(item.title), 'category': str(item.category),
              'score': _number(item.score), 'status': status.tolist(),
              'points': _masked(points, drawn), 'scores': _masked(scores, drawn),
              'accepted': int((status == 2).sum()), 'flagged': int((status == 1).sum()),
              'ref_points': None}
    if item.reference is not None and item.reference_keypoints is not None:
        ref = _checked(label, 'reference_keypoints', item.reference_keypoints, (k, 2),
                       np.zeros(k, dtype=bool))
        visible = (np.isfinite(ref).all(axis=-1) if item.reference_visible is None
                   else np.asarray(item.reference_visible, dtype=bool))
        if visible.shape != (k,):
            raise ValueError(f'{label}: reference_visible must have shape ({k},), '
                             f'got {visible.shape}')
        record['ref_points'] = _masked(
            _checked(label, 'reference_keypoints', ref, (k, 2), visible), visible)
    return record


def _checked(label: str, name: str, value: Any, shape: tuple, drawn: np.ndarray) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise ValueError(f'{label}: {name} must have shape {shape}, got {arr.shape}')
    if not np.isfinite(arr[drawn]).all():
        raise ValueError(f'{label}: {name} must be finite where a point is drawn')
    return arr


def _masked(arr: np.ndarray, keep: np.ndarray) -> list:
    # thousandths of a pixel are far below what the page can show; JSON has no NaN
    return [np.round(v, 3).tolist() if k else None for v, k in zip(arr, keep)]


def _number(value: float) -> float | None:
    value = float(value)
    return round(value, 6) if math.isfinite(value) else None


def _summary(records: list[dict], min_score: float) -> str:
    if not records:
        return 'Nothing to show: the run has no targets.'
    accepted = sum(r['accepted'] for r in records)
    flagged = sum(r['flagged'] for r in records)
    with_flags = sum(r['flagged'] > 0 for r in records)
    def count(n: int, noun: str) -> str:
        return f'{n} {noun}' + ('' if n == 1 else 's')
    return (f"{count(len(records), 'target')} · {count(accepted, 'point')} accepted · "
            f"{flagged} flagged (score below {min_score:g}) in {count(with_flags, 'target')}")


def _key(path: str | os.PathLike) -> str:
    return os.path.abspath(os.fspath(path))


def _image_table(items: list[GalleryItem], write: Callable[[Image.Image, str], str],
                 sizes: tuple[int, int]) -> tuple[list[dict], dict[str, int]]:
    """Every image the items use, read once: its entry for the page and its index by path."""
    thumb = {}  # a target needs a thumbnail; a file only used as a reference does not
    for item in items:
        thumb[_key(item.target)] = (pathlib.Path(item.target), True)
        if item.reference is not None:
            thumb.setdefault(_key(item.reference), (pathlib.Path(item.reference), False))
    entries = [_image_entry(n, p, wants_thumb, write, sizes)
               for n, (p, wants_thumb) in enumerate(thumb.values())]
    return entries, {key: n for n, key in enumerate(thumb)}


def _image_entry(number: int, path: pathlib.Path, wants_thumb: bool,
                 write: Callable[[Image.Image, str], str], sizes: tuple[int, int]) -> dict:
    entry = {'name': path.name}
    try:
        image = load_image(path)
    except USER_ERRORS as err:  # one bad file: a placeholder on the page, not a failed run
        entry['error'] = str(err)
        return entry
    entry.update(width=image.width, height=image.height)
    large = shrink(image, sizes[1])
    entry['large'] = write(large, f'{number:05d}.jpg')
    if wants_thumb:
        small = shrink(image, sizes[0])
        same = small.size == large.size  # a small image: one JPEG serves both
        entry['thumb'] = entry['large'] if same else write(small, f'{number:05d}_thumb.jpg')
    return entry


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format='JPEG', quality=88)
    return buffer.getvalue()


def _embed(image: Image.Image, name: str) -> str:
    return 'data:image/jpeg;base64,' + base64.b64encode(_jpeg(image)).decode('ascii')


def _file_writer(folder: pathlib.Path, href: str) -> Callable[[Image.Image, str], str]:
    def write(image: Image.Image, name: str) -> str:
        (folder / name).write_bytes(_jpeg(image))
        return f'{href}/{name}'  # relative to the page, which sits beside the folder
    return write


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 12px; color: #222; }
h1 { font-size: 18px; margin: 0; }
#summary { color: #555; font-size: 12px; margin: 2px 0 8px; }
#controls { display: flex; flex-wrap: wrap; gap: 16px; align-items: center; margin-bottom: 10px;
  font-size: 13px; }
#grid { display: flex; flex-wrap: wrap; gap: 10px; align-items: flex-start; }
.thumb { cursor: pointer; border: 1px solid #ddd; border-radius: 4px; padding: 4px;
  background: #fafafa; }
.thumb:hover, .thumb:focus { border-color: #4a7bd0; background: #eef3fc; outline: none; }
.thumb[hidden], #large[hidden], #controls[hidden] { display: none; }
.frame { display: flex; align-items: center; justify-content: center; }
.picture { position: relative; flex: none; }
.picture img { display: block; width: 100%; height: 100%; }
.picture svg { position: absolute; left: 0; top: 0; width: 100%; height: 100%; overflow: visible; }
.picture svg * { vector-effect: non-scaling-stroke; }
.caption { font-size: 12px; margin-top: 4px; overflow-wrap: anywhere; }
.caption .title { font-weight: 600; }
.caption .stats { color: #555; }
.caption .flags { color: #b35c00; }
.placeholder { box-sizing: border-box; width: 100%; height: 100%; overflow: auto; padding: 6px;
  border: 1px dashed #c66; background: #fff4f4; color: #933; font-size: 11px;
  overflow-wrap: anywhere; }
.placeholder.none { border-color: #666; background: none; color: #aaa; }
#large { position: fixed; inset: 0; z-index: 10; background: rgba(0, 0, 0, 0.5); }
.sheet { position: absolute; inset: 20px; overflow: auto; padding: 12px 16px; border-radius: 6px;
  background: #222; color: #eee; box-shadow: 0 4px 24px rgba(0, 0, 0, 0.6); }
#large header { display: flex; gap: 12px; align-items: baseline; flex-wrap: wrap; }
#large-title { font-size: 16px; font-weight: 600; overflow-wrap: anywhere; }
#large .buttons { margin-left: auto; display: flex; gap: 6px; }
#panes { display: flex; gap: 16px; margin-top: 10px; align-items: flex-start; }
.pane h2 { font-size: 13px; font-weight: normal; margin: 0 0 4px; color: #ccc;
  overflow-wrap: anywhere; }
.legend { font-size: 12px; margin-top: 10px; display: flex; gap: 16px; align-items: center;
  flex-wrap: wrap; }
.ramp { display: inline-block; position: relative; width: 160px; height: 10px;
  vertical-align: middle; margin: 0 4px;
  background: linear-gradient(to right, hsl(0,85%,48%), hsl(60,85%,48%), hsl(120,85%,40%)); }
.ramp .tick { position: absolute; top: -4px; width: 2px; height: 18px; background: #fff; }
svg .label { font-family: system-ui, sans-serif; paint-order: stroke; fill: #fff;
  stroke: rgba(0, 0, 0, 0.85); stroke-linejoin: round; }
svg .label .score { fill: #ddd; }
</style></head>
<body>
<h1>__TITLE__</h1>
<p id="summary">__SUMMARY__</p>
<div id="controls">
<label>Sort <select id="sort">
<option value="score-asc" selected>score, worst first</option>
<option value="score-desc">score, best first</option>
<option value="name">name</option></select></label>
<label><input type="checkbox" id="flagged-only"> only targets with flagged points</label>
<span id="shown"></span>
</div>
<div id="grid"></div>
<div id="large" role="dialog" aria-modal="true" aria-labelledby="large-title" hidden>
<div class="sheet"><header><span id="large-title"></span><span id="large-facts"></span>
<span class="buttons"><button type="button" id="prev" title="previous (&larr;)">&larr;</button>
<button type="button" id="next" title="next (&rarr;)">&rarr;</button>
<button type="button" id="close" title="close (Esc)">close &times;</button></span></header>
<div id="panes"></div>
<div class="legend">
<span>score 0<span class="ramp"><span class="tick" id="tick"></span></span>1</span>
<span><svg width="14" height="14" viewBox="-7 -7 14 14"><circle r="5" fill="hsl(120,85%,40%)"
stroke="#000"/></svg> accepted (score &ge; <span id="min-score"></span>)</span>
<span><svg width="14" height="14" viewBox="-7 -7 14 14"><circle r="5" fill="none" stroke="#000"
stroke-width="4"/><circle r="5" fill="none" stroke="hsl(20,85%,48%)" stroke-width="2"/></svg>
flagged (below <span id="min-score-2"></span>)</span>
<span><svg width="14" height="14" viewBox="-7 -7 14 14"><circle r="5" fill="#3cf"
stroke="#000"/></svg> labelled in the reference</span>
<span>Esc closes, &larr; &rarr; step through the current order</span></div>
</div></div>
<script type="application/json" id="corrkit-gallery-data">__DATA__</script>
<script>
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('corrkit-gallery-data').textContent);
  var $ = function (id) { return document.getElementById(id); };
  var NS = 'http://www.w3.org/2000/svg';
  var items = data.items, images = data.images, cards = [];
  var state = {order: [], current: -1};

  function svgEl(name, attrs, parent) {
    var el = document.createElementNS(NS, name);
    Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(el);
    return el;
  }
  function htmlEl(name, className, text, parent) {
    var el = document.createElement(name);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;  // text only: names are user data
    if (parent) parent.appendChild(el);
    return el;
  }
  function colour(s) {  // red (0) through yellow to green (1)
    if (s === null) return '#888';
    var t = Math.min(1, Math.max(0, s));
    return 'hsl(' + Math.round(120 * t) + ',85%,' + (48 - 8 * t) + '%)';
  }
  function fmt(s) { return s === null ? 'n/a' : s.toFixed(2); }

  // A box of width x height CSS pixels: the image and, over it, an SVG in the image's own
  // pixel frame, so a point at pixel (x, y) is drawn at (x, y) whatever the box's size
  function picture(entry, which, width, height, lazy) {
    var box = htmlEl('div', 'picture');
    box.style.width = width + 'px'; box.style.height = height + 'px';
    if (entry.error) {
      var ph = htmlEl('div', 'placeholder', null, box);
      htmlEl('strong', null, entry.name, ph);
      htmlEl('div', null, entry.error, ph);
      return {box: box, svg: null};
    }
    var img = htmlEl('img', null, undefined, box);
    if (lazy) img.loading = 'lazy';
    img.alt = entry.name; img.src = entry[which];
    var svg = svgEl('svg', {viewBox: '-0.5 -0.5 ' + entry.width + ' ' + entry.height,
                            preserveAspectRatio: 'none'}, box);
    // unit: image pixels per CSS pixel, to keep markers and names the same size on screen
    return {box: box, svg: svg, size: [entry.width, entry.height], unit: entry.width / width};
  }
  function fitted(entry, width, height) {
    if (entry.error) return [width, Math.min(height, width)];
    var s = Math.min(width / entry.width, height / entry.height);
    return [entry.width * s, entry.height * s];
  }

  function drawBones(svg, unit, points, edges, shown) {
    edges.forEach(function (e) {
      if (!shown(e[0]) || !shown(e[1])) return;
      var a = points[e[0]], b = points[e[1]];
      [['rgba(0,0,0,0.6)', 3], ['rgba(255,255,255,0.85)', 1.5]].forEach(function (pen) {
        svgEl('line', {x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: pen[0],
                       'stroke-width': pen[1], 'class': 'bone'}, svg);
      });
    });
  }
  function label(svg, size, unit, p, r, text, score) {
    // names near the right or bottom edge go to the left or above, to stay on the image
    var left = p[0] > 0.7 * size[0], up = p[1] > size[1] - 16 * unit;
    var t = svgEl('text', {x: p[0] + (left ? -1 : 1) * (r + 2 * unit),
                           y: p[1] + (up ? -r - 3 * unit : 4 * unit), 'class': 'label',
                           'text-anchor': left ? 'end' : 'start', 'font-size': 12 * unit,
                           'stroke-width': 3}, svg);
    t.textContent = text;
    if (score !== undefined) svgEl('tspan', {'class': 'score'}, t).textContent = ' ' + fmt(score);
  }
  function drawTarget(pic, item, named) {
    if (!pic.svg) return;
    var cat = data.categories[item.category], u = pic.unit, svg = pic.svg;
    drawBones(svg, u, item.points, cat.skeleton, function (k) { return item.status[k] > 0; });
    item.points.forEach(function (p, k) {
      var st = item.status[k];
      if (!st) return;
      var s = item.scores[k], c = colour(s), r = (named ? 6 : 4) * u;
      var attrs = {cx: p[0], cy: p[1], r: r, 'class': 'point', 'data-name': cat.names[k],
                   'data-x': p[0], 'data-y': p[1], 'data-status': st, 'data-score': fmt(s)};
      if (st === 2) {
        attrs.fill = c; attrs.stroke = '#000'; attrs['stroke-width'] = 1;
      } else {  // flagged: a hollow ring crossed, so it reads without colour too
        svgEl('circle', {cx: p[0], cy: p[1], r: r, fill: 'none', stroke: '#000',
                         'stroke-width': 4.5}, svg);
        var d = r * 0.6;
        svgEl('path', {d: 'M' + (p[0] - d) + ' ' + (p[1] - d) + 'L' + (p[0] + d) + ' ' +
                          (p[1] + d) + 'M' + (p[0] - d) + ' ' + (p[1] + d) + 'L' +
                          (p[0] + d) + ' ' + (p[1] - d),
                       stroke: c, 'stroke-width': 1.5}, svg);
        attrs.fill = 'none'; attrs.stroke = c; attrs['stroke-width'] = 2.5;
      }
      var circle = svgEl('circle', attrs, svg);
      svgEl('title', {}, circle).textContent = cat.names[k] + ': ' + fmt(s) +
        (st === 1 ? ' (flagged)' : '');
      if (named) label(svg, pic.size, u, p, r, cat.names[k], s);
    });
  }
  function drawReference(pic, item) {
    if (!pic.svg || !item.ref_points) return;
    var cat = data.categories[item.category], u = pic.unit, pts = item.ref_points;
    drawBones(pic.svg, u, pts, cat.skeleton, function (k) { return pts[k] !== null; });
    pts.forEach(function (p, k) {
      if (p === null) return;
      svgEl('circle', {cx: p[0], cy: p[1], r: 6 * u, fill: '#3cf', stroke: '#000',
                       'stroke-width': 1, 'class': 'ref-point', 'data-name': cat.names[k],
                       'data-x': p[0], 'data-y': p[1]}, pic.svg);
      label(pic.svg, pic.size, u, p, 6 * u, cat.names[k]);
    });
  }

  function facts(item) {
    return item.category + ' \u00b7 score ' + fmt(item.score) + ' \u00b7 ' + item.accepted +
      ' accepted, ' + item.flagged + ' flagged';
  }
  function buildCard(item, i) {
    var side = data.thumb_side, entry = images[item.target];
    var card = htmlEl('div', 'thumb');
    card.tabIndex = 0;
    card.dataset.index = i; card.dataset.title = item.title;
    card.dataset.score = item.score === null ? '' : item.score;
    card.dataset.flagged = item.flagged;
    var frame = htmlEl('div', 'frame', undefined, card);
    frame.style.width = side + 'px'; frame.style.height = side + 'px';
    var size = fitted(entry, side, side);
    var pic = picture(entry, 'thumb', size[0], size[1], true);
    frame.appendChild(pic.box);
    drawTarget(pic, item, false);
    var caption = htmlEl('div', 'caption', undefined, card);
    caption.style.width = side + 'px';
    htmlEl('div', 'title', item.title, caption);
    htmlEl('div', 'stats', item.category + ' \u00b7 score ' + fmt(item.score), caption);
    var counts = htmlEl('div', 'stats', item.accepted + ' accepted', caption);
    if (item.flagged) htmlEl('span', 'flags', ', ' + item.flagged + ' flagged', counts);
    card.addEventListener('click', function () { open(i); });
    card.addEventListener('keydown', function (e) { if (e.key === 'Enter') open(i); });
    return card;
  }

  function byScore(sign) {
    return function (a, b) {  // no score sorts last either way
      var x = items[a].score, y = items[b].score;
      if (x === null || y === null) return (x === null) - (y === null);
      return sign * (x - y);
    };
  }
  function byName(a, b) {
    return items[a].title.localeCompare(items[b].title, undefined, {numeric: true}) ||
      items[a].category.localeCompare(items[b].category);
  }
  function arrange() {
    var key = $('sort').value, only = $('flagged-only').checked, grid = $('grid');
    var first = key === 'name' ? byName : byScore(key === 'score-desc' ? -1 : 1);
    var order = items.map(function (_, i) { return i; });
    order.sort(function (a, b) { return first(a, b) || byName(a, b) || a - b; });
    order.forEach(function (i) { grid.appendChild(cards[i]); });
    state.order = order.filter(function (i) { return !only || items[i].flagged > 0; });
    cards.forEach(function (card, i) { card.hidden = only && !items[i].flagged; });
    $('shown').textContent = 'showing ' + state.order.length + ' of ' + items.length;
  }

  function pane(id, heading, entry, width, height) {
    var box = htmlEl('div', 'pane');
    box.id = id;
    htmlEl('h2', null, heading, box);
    if (!entry) {
      var none = htmlEl('div', 'placeholder none', 'no reference', box);
      none.style.width = width + 'px'; none.style.height = '3em';
      return {box: box, pic: {svg: null}};
    }
    box.dataset.name = entry.name;
    var size = fitted(entry, width, height), pic = picture(entry, 'large', size[0], size[1]);
    box.appendChild(pic.box);
    return {box: box, pic: pic};
  }
  function render() {
    var i = state.current, item = items[i], panes = $('panes');
    $('large').dataset.index = i;
    $('large-title').textContent = item.title;
    $('large-facts').textContent = facts(item);
    panes.textContent = '';
    // the sheet's margins and padding, the gap between the panes, header and legend
    var width = Math.max(120, (window.innerWidth - 40 - 32 - 16) / 2);
    var height = Math.max(120, window.innerHeight - 40 - 24 - 130);
    var trg = images[item.target];
    var ref = item.reference === null ? null : images[item.reference];
    var left = pane('large-target', 'target: ' + trg.name, trg, width, height);
    var right = pane('large-reference', ref ? 'best reference: ' + ref.name : 'best reference',
                     ref, width, height);
    drawTarget(left.pic, item, true);
    if (ref) drawReference(right.pic, item);
    panes.appendChild(left.box); panes.appendChild(right.box);
  }
  function open(i) {
    state.current = i;
    $('large').hidden = false;
    render();
    $('close').focus();
  }
  function close() {
    if (state.current < 0) return;
    $('large').hidden = true;
    var card = cards[state.current];
    state.current = -1;
    card.focus();
  }
  function step(d) {
    var at = state.order.indexOf(state.current), n = state.order.length;
    if (!n) return;
    open(state.order[at < 0 ? 0 : (at + d + n) % n]);
  }

  $('min-score').textContent = $('min-score-2').textContent = String(data.min_score);
  $('tick').style.left = 'calc(' + 100 * Math.min(1, Math.max(0, data.min_score)) + '% - 1px)';
  if (!items.length) $('controls').hidden = true;
  items.forEach(function (item, i) { cards.push(buildCard(item, i)); });
  arrange();
  $('sort').addEventListener('change', arrange);
  $('flagged-only').addEventListener('change', arrange);
  $('close').addEventListener('click', close);
  $('prev').addEventListener('click', function () { step(-1); });
  $('next').addEventListener('click', function () { step(1); });
  document.addEventListener('keydown', function (e) {
    if (state.current < 0) return;
    if (e.key === 'Escape') close();
    else if (e.key === 'ArrowLeft') step(-1);
    else if (e.key === 'ArrowRight') step(1);
  });
  window.addEventListener('resize', function () { if (state.current >= 0) render(); });
  document.body.dataset.ready = 'true';
  window.corrkitGallery = {open: open, close: close, state: state};
})();
</script>
</body></html>
"""
