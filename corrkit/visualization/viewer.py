"""A self-contained HTML page to explore matches: click the source, see the target's heat map."""
from __future__ import annotations

import base64
import html
import io
import json
import os
import pathlib
import re
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..utils.fileio import atomic_path
from ..utils.image import ImageLike, load_image
from .display import display_points, shrink

__all__ = ['write_match_viewer']

#: Longest side of an embedded heat map; larger maps are average-pooled down.
HEATMAP_SIDE = 48

#: The page template's placeholders, filled in a single pass.
_PLACEHOLDER = re.compile(r'__(TITLE|META|DATA)__')


def write_match_viewer(path: str | os.PathLike, src_image: ImageLike, trg_image: ImageLike, *,
                       src_kps: Any, trg_kps: Any, confidence: Any, grid_src: Any,
                       grid_trg: Any, heatmaps: Any, title: str = 'corrkit matches',
                       meta: Mapping[str, Any] | None = None) -> pathlib.Path:
    """Write one HTML file that shows a pair, its matches and a heat map per grid point.

    The page needs nothing but a browser (it works from ``file://``): the images,
    the points and the heat maps are embedded. Clicking on (or hovering over) the
    source picks the nearest grid point; the page marks it, marks its predicted
    target point and lays its heat map over the target. The keypoints are drawn
    on both images and listed in a table; hovering a row highlights the pair.

    Images are embedded as JPEG with the longest side at most 1024 pixels, and all
    coordinates are carried with them (pixel centres, :func:`~corrkit.ops.rescale_points`),
    so the page (and its DOM) works in pixels of
    the embedded images. Each heat map is average-pooled so its longest side is at
    most 48, min-max normalised to ``[0, 1]`` on its own and quantised to ``uint8``.

    After a pick, the element ``#trg-marker`` carries ``data-index`` (the grid
    point) and ``data-x`` / ``data-y`` (its predicted target in embedded pixels);
    ``#src-marker`` does the same for the source. ``<body data-ready="true">``
    tells that the images are drawn, and ``window.corrkitViewer`` offers
    ``pick(index)`` and the ``state``.

    Args:
        path: The HTML file to write; its folder is created.
        src_image: Source image (a PIL image of any mode, or a path).
        trg_image: Target image.
        src_kps: ``(N, 2)`` source keypoints ``(x, y)`` in pixels of ``src_image``.
        trg_kps: ``(N, 2)`` matched target keypoints in pixels of ``trg_image``.
        confidence: ``(N,)`` confidence of each match, in ``[0, 1]``.
        grid_src: ``(G, 2)`` a regular grid of source points, in source pixels.
        grid_trg: ``(G, 2)`` each grid point's predicted target, in target pixels.
        heatmaps: ``(G, th, tw)`` non-negative scores of each grid point over a
            ``th x tw`` grid spanning the whole target (row 0 at the top).
        title: Page title.
        meta: Short facts shown under the title, such as the model and checkpoint.

    Returns:
        The path written.

    Raises:
        ValueError: If an argument has the wrong shape (the message names the
            argument, the shape got and the shape expected), holds NaN or
            infinity, or a heat map is negative, or the grid is empty.

    Examples:
        >>> import tempfile
        >>> img = Image.new('RGB', (64, 48))
        >>> grid = np.array([[8.0, 8.0], [40.0, 24.0]])
        >>> out = write_match_viewer(
        ...     pathlib.Path(tempfile.mkdtemp()) / 'pair.html', img, img,
        ...     src_kps=grid, trg_kps=grid + 2, confidence=np.array([0.9, 0.4]),
        ...     grid_src=grid, grid_trg=grid + 1, heatmaps=np.random.rand(2, 6, 8),
        ...     meta={'model': 'demo'})
        >>> out.name, 'id="corrkit-data"' in out.read_text()
        ('pair.html', True)
    """
    src_kps = _points('src_kps', src_kps)
    n = len(src_kps)
    trg_kps = _points('trg_kps', trg_kps, n)
    confidence = _array('confidence', confidence, (n,))
    grid_src = _points('grid_src', grid_src)
    if len(grid_src) == 0:
        raise ValueError('grid_src must hold at least one point, got shape (0, 2)')
    grid_trg = _points('grid_trg', grid_trg, len(grid_src))
    heatmaps = _heatmaps(heatmaps, len(grid_src))

    src_img, trg_img = load_image(src_image), load_image(trg_image)
    src, trg = shrink(src_img), shrink(trg_img)
    src_size, trg_size = (src_img.height, src_img.width), (trg_img.height, trg_img.width)

    def shown(points: np.ndarray, side: str) -> list:
        return _rounded(display_points(points, src_size if side == 'src' else trg_size,
                                       src if side == 'src' else trg))

    data = {
        'src': _embedded_image(src, src_img), 'trg': _embedded_image(trg, trg_img),
        'keypoints': {'src': shown(src_kps, 'src'), 'trg': shown(trg_kps, 'trg'),
                      'confidence': _rounded(confidence)},
        'grid': {'src': shown(grid_src, 'src'), 'trg': shown(grid_trg, 'trg')},
        'heatmaps': {'shape': list(heatmaps.shape),
                     'data': base64.b64encode(heatmaps.tobytes()).decode('ascii')},
    }
    # '<' escaped so no string in the data can close the <script> block early
    payload = json.dumps(data, separators=(',', ':')).replace('<', '\\u003c')
    meta_line = ' · '.join(f'{k}: {v}' for k, v in (meta or {}).items())
    # one pass over the template: a title or meta holding '__DATA__' stays text
    values = {'TITLE': html.escape(title), 'META': html.escape(meta_line), 'DATA': payload}
    page = _PLACEHOLDER.sub(lambda match: values[match.group(1)], _PAGE)
    path = pathlib.Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding='utf-8')
    return path


def _numpy(name: str, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
    arr = np.asarray(value, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f'{name} must be finite, got NaN or infinity')
    return arr


def _array(name: str, value: Any, expected: tuple) -> np.ndarray:
    """``value`` as float64, checked against ``expected`` (``None`` matches any length)."""
    arr = _numpy(name, value)
    if arr.size == 0 and expected[0] in (0, None):  # [] stands for "no points"
        arr = arr.reshape((0,) + expected[1:])
    if arr.ndim != len(expected) or any(e is not None and e != s
                                        for e, s in zip(expected, arr.shape)):
        dims = ['N' if e is None else str(e) for e in expected]
        want = f"({dims[0]},)" if len(dims) == 1 else f"({', '.join(dims)})"
        raise ValueError(f'{name} must have shape {want}, got {tuple(arr.shape)}')
    return arr


def _points(name: str, value: Any, length: int | None = None) -> np.ndarray:
    return _array(name, value, (length, 2))


def _heatmaps(value: Any, length: int) -> np.ndarray:
    """``(G, th, tw)`` scores pooled to at most HEATMAP_SIDE, each min-max scaled to uint8."""
    arr = _numpy('heatmaps', value)
    if arr.ndim != 3 or arr.shape[0] != length or 0 in arr.shape:
        raise ValueError(f'heatmaps must have shape ({length}, th, tw), got {tuple(arr.shape)}')
    if (arr < 0).any():
        raise ValueError('heatmaps must be non-negative')
    th, tw = arr.shape[1:]
    if max(th, tw) > HEATMAP_SIDE:
        scale = HEATMAP_SIDE / max(th, tw)
        size = (max(1, round(th * scale)), max(1, round(tw * scale)))
        arr = F.adaptive_avg_pool2d(torch.from_numpy(arr), size).numpy()
    low = arr.min(axis=(1, 2), keepdims=True)
    span = arr.max(axis=(1, 2), keepdims=True) - low
    # a flat map says nothing about where the match is: shown as all zeros
    unit = np.divide(arr - low, span, out=np.zeros_like(arr), where=span > 0)
    return np.round(unit * 255).astype(np.uint8)


def _embedded_image(image: Image.Image, original: Image.Image) -> dict:
    buffer = io.BytesIO()
    image.save(buffer, format='JPEG', quality=90)
    url = 'data:image/jpeg;base64,' + base64.b64encode(buffer.getvalue()).decode('ascii')
    # the original's size lets the page show pixels of the image as given
    return {'url': url, 'width': image.width, 'height': image.height,
            'scale': image.width / original.width,
            'original': [original.width, original.height]}


def _rounded(arr: np.ndarray) -> list:
    # thousandths of a pixel are far below what the page can show, and keep the file small
    return np.round(arr, 3).tolist()


_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 12px; color: #222; }
h1 { font-size: 18px; margin: 0; }
.meta, .legend, #readout { color: #555; font-size: 12px; margin: 2px 0 8px; }
.panes { display: flex; gap: 12px; align-items: flex-start; }
.pane { position: relative; min-width: 0; }
.pane canvas { display: block; width: 100%; height: auto; }
.pane canvas.overlay { position: absolute; left: 0; top: 0; height: 100%; }
#src-overlay { cursor: crosshair; }
table { border-collapse: collapse; margin-top: 10px; font-size: 12px; }
td, th { padding: 2px 8px; text-align: right; border-bottom: 1px solid #eee; }
tr.highlight td { background: #ffe9a8; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 50%; }
</style></head>
<body>
<h1>__TITLE__</h1>
<div class="meta">__META__</div>
<p class="legend">Click or hover the source: the ring marks the nearest grid point, the
crosshair its predicted target, colours its match scores (turbo: blue low, red high);
dots are the keypoints, hover a table row to highlight a pair.</p>
<div class="panes">
<div class="pane" id="src-pane"><canvas id="src-image"></canvas>
<canvas class="overlay" id="src-overlay"></canvas></div>
<div class="pane" id="trg-pane"><canvas id="trg-image"></canvas>
<canvas class="overlay" id="trg-overlay"></canvas></div>
</div>
<div id="readout">No grid point picked.</div>
<div id="src-marker" hidden></div><div id="trg-marker" hidden></div>
<table id="kp-table"><thead><tr><th></th><th>#</th><th>source (x, y)</th>
<th>target (x, y)</th><th>confidence</th></tr></thead><tbody></tbody></table>
<script type="application/json" id="corrkit-data">__DATA__</script>
<script>
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('corrkit-data').textContent);
  var $ = function (id) { return document.getElementById(id); };
  var kps = data.keypoints, grid = data.grid, shape = data.heatmaps.shape;
  var state = {index: -1, highlight: -1};
  var images = {};
  var raw = atob(data.heatmaps.data), heat = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) heat[i] = raw.charCodeAt(i);

  // Turbo as a polynomial fit (Mikhailov 2019): no lookup table to embed
  function turbo(t) {
    var c = [[0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
             [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
             [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973]];
    return c.map(function (k) {
      var v = k[0] + t * (k[1] + t * (k[2] + t * (k[3] + t * (k[4] + t * k[5]))));
      return Math.round(255 * Math.min(1, Math.max(0, v)));
    });
  }
  var lut = [];
  for (var v = 0; v < 256; v++) lut.push(turbo(v / 255));
  // hues stop short of magenta, which is kept for the pick markers
  function colour(i) { return 'hsl(' + Math.round(280 * i / Math.max(kps.src.length, 1)) + ',90%,55%)'; }

  var heatCanvas = document.createElement('canvas');
  heatCanvas.width = shape[2]; heatCanvas.height = shape[1];
  function drawHeat(ctx, k) {
    var hctx = heatCanvas.getContext('2d'), img = hctx.createImageData(shape[2], shape[1]);
    var size = shape[1] * shape[2], offset = k * size;
    for (var p = 0; p < size; p++) {
      var v = heat[offset + p], rgb = lut[v];
      img.data[4 * p] = rgb[0]; img.data[4 * p + 1] = rgb[1]; img.data[4 * p + 2] = rgb[2];
      img.data[4 * p + 3] = Math.round(v * 0.7);  // low scores stay see-through
    }
    hctx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(heatCanvas, 0, 0, ctx.canvas.width, ctx.canvas.height);
  }

  function drawBase(side) {
    var ctx = $(side + '-image').getContext('2d');
    ctx.drawImage(images[side], 0, 0);
    if (side === 'trg' && state.index >= 0) drawHeat(ctx, state.index);
    kps[side].forEach(function (p, i) {
      var big = i === state.highlight;
      ctx.beginPath(); ctx.arc(p[0], p[1], big ? 7 : 4, 0, 2 * Math.PI);
      ctx.fillStyle = colour(i); ctx.fill();
      ctx.lineWidth = big ? 3 : 1; ctx.strokeStyle = big ? '#fff' : '#000'; ctx.stroke();
    });
  }

  function drawMarker(side, p, cross) {
    var canvas = $(side + '-overlay'), ctx = canvas.getContext('2d');
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    [[4, 'rgba(0,0,0,0.8)'], [2, '#fff']].forEach(function (pen) {
      ctx.lineWidth = pen[0]; ctx.strokeStyle = pen[1];
      ctx.beginPath(); ctx.arc(p[0], p[1], 10, 0, 2 * Math.PI);
      if (cross) {  // arms leave the centre free so the dot shows where the point is
        [[1, 0], [-1, 0], [0, 1], [0, -1]].forEach(function (d) {
          ctx.moveTo(p[0] + 5 * d[0], p[1] + 5 * d[1]);
          ctx.lineTo(p[0] + 16 * d[0], p[1] + 16 * d[1]);
        });
      }
      ctx.stroke();
    });
    ctx.beginPath(); ctx.arc(p[0], p[1], 3, 0, 2 * Math.PI);
    ctx.fillStyle = '#ff00ff'; ctx.fill();
  }

  function fmt(p, side) {  // embedded pixels to the image's, pixel centres as in ops.coords
    var d = data[side];
    var x = (p[0] + 0.5) * d.original[0] / d.width - 0.5;
    var y = (p[1] + 0.5) * d.original[1] / d.height - 0.5;
    return '(' + x.toFixed(1) + ', ' + y.toFixed(1) + ')';
  }

  function pick(k) {
    state.index = k;
    drawBase('trg');
    drawMarker('src', grid.src[k], false);
    drawMarker('trg', grid.trg[k], true);
    ['src', 'trg'].forEach(function (side) {
      var el = $(side + '-marker');
      el.dataset.index = k; el.dataset.x = grid[side][k][0]; el.dataset.y = grid[side][k][1];
    });
    $('readout').textContent = 'Grid point ' + k + ': source ' + fmt(grid.src[k], 'src') +
      ' \u2192 target ' + fmt(grid.trg[k], 'trg') + ' (pixels of the original images).';
  }

  function nearest(x, y) {
    var best = 0, bestD = Infinity;
    grid.src.forEach(function (p, i) {
      var d = (p[0] - x) * (p[0] - x) + (p[1] - y) * (p[1] - y);
      if (d < bestD) { bestD = d; best = i; }
    });
    return best;
  }

  function onSource(e) {
    // the canvas may be scaled by CSS: map the mouse back to image pixels
    var canvas = e.currentTarget, r = canvas.getBoundingClientRect();
    var k = nearest((e.clientX - r.left) * canvas.width / r.width,
                    (e.clientY - r.top) * canvas.height / r.height);
    if (k !== state.index) pick(k);
  }

  function highlight(i) {
    state.highlight = i;
    drawBase('src'); drawBase('trg');
  }

  function buildTable() {
    var body = $('kp-table').tBodies[0];
    kps.src.forEach(function (p, i) {
      var row = body.insertRow();
      row.dataset.index = i;
      row.insertCell().innerHTML = '<span class="swatch"></span>';
      row.cells[0].firstChild.style.background = colour(i);
      [String(i), fmt(p, 'src'), fmt(kps.trg[i], 'trg'),
       kps.confidence[i].toFixed(2)].forEach(function (text) { row.insertCell().textContent = text; });
      row.addEventListener('mouseenter', function () { row.classList.add('highlight'); highlight(i); });
      row.addEventListener('mouseleave', function () { row.classList.remove('highlight'); highlight(-1); });
    });
  }

  function load(side) {
    return new Promise(function (resolve, reject) {
      var img = new Image();
      img.onload = function () { images[side] = img; resolve(); };
      img.onerror = function () { reject(new Error('cannot decode the ' + side + ' image')); };
      img.src = data[side].url;
    });
  }

  Promise.all([load('src'), load('trg')]).then(function () {
    ['src', 'trg'].forEach(function (side) {
      var w = data[side].width, h = data[side].height;
      [$(side + '-image'), $(side + '-overlay')].forEach(function (c) { c.width = w; c.height = h; });
      // panes share the row in proportion to their widths, never beyond full size
      $(side + '-pane').style.flex = w + ' 1 0px';
      $(side + '-pane').style.maxWidth = w + 'px';
      drawBase(side);
    });
    $('src-overlay').addEventListener('click', onSource);
    $('src-overlay').addEventListener('mousemove', onSource);
    buildTable();
    document.body.dataset.ready = 'true';
  });

  window.corrkitViewer = {pick: pick, state: state};
})();
</script>
</body></html>
"""
