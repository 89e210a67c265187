"""The demo behind ``tools/demo.py``: match two images and write what was found."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

from ..utils.image import load_image
from ..visualization import draw_matches, tps_warp
from .inference import MatchResult, init_matcher, match_pair
from .viewer import write_viewer


def read_keypoints(path: str | os.PathLike) -> np.ndarray:
    """Read ``(N, 2)`` points ``(x, y)`` from a JSON list of pairs or a two-column CSV.

    Args:
        path: ``.json`` (``[[x, y], ...]`` or ``{"kps": [[x, y], ...]}``) or
            ``.csv`` / ``.txt`` (one ``x,y`` per line, an optional header line).

    Returns:
        The points as a float array.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the content is not a list of finite ``(x, y)`` pairs.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"keypoint file '{path}' does not exist")
    try:
        if path.endswith('.json'):
            with open(path) as f:
                data = json.load(f)
            data = data.get('kps', data) if isinstance(data, dict) else data
            pts = np.asarray(data, dtype=np.float64)
        else:
            rows = [line.strip() for line in open(path) if line.strip()]
            if rows and not rows[0][0].lstrip('-').replace('.', '', 1)[:1].isdigit():
                rows = rows[1:]
            pts = np.asarray([[float(v) for v in r.replace(';', ',').split(',')[:2]]
                              for r in rows], dtype=np.float64)
    except (ValueError, TypeError, json.JSONDecodeError) as err:
        raise ValueError(f"'{path}' is not a list of (x, y) keypoints ({err})") from err
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) == 0:
        raise ValueError(f"'{path}' must hold N >= 1 points (x, y); got shape {pts.shape}")
    bad = np.flatnonzero(~np.isfinite(pts).all(1))
    if len(bad):
        raise ValueError(f"'{path}': point {bad[0] + 1} is {pts[bad[0]].tolist()}; "
                         f'coordinates must be finite pixels')
    return pts


def check_inside(points: np.ndarray, image: Image.Image, source: str) -> None:
    """Raise ``ValueError`` naming the first point outside ``image`` (pixels, x then y)."""
    w, h = image.size
    outside = np.flatnonzero((points[:, 0] < 0) | (points[:, 0] > w - 1)
                             | (points[:, 1] < 0) | (points[:, 1] > h - 1))
    if len(outside):
        raise ValueError(f'{source}: point {outside[0] + 1}, {points[outside[0]].tolist()}, '
                         f'lies outside the {w} x {h} source image')


def source_grid(height: int, width: int, n: int = 8, margin: float = 0.1) -> np.ndarray:
    """An ``n`` × ``n`` grid of points over the source, ``margin`` of each side left out."""
    xs = np.linspace(margin * (width - 1), (1 - margin) * (width - 1), n)
    ys = np.linspace(margin * (height - 1), (1 - margin) * (height - 1), n)
    return np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)


def run_demo(src: str | os.PathLike, trg: str | os.PathLike, config: str | os.PathLike,
             checkpoint: str | None = None, kps: Sequence | np.ndarray | None = None,
             out_dir: str | os.PathLike = 'work_dirs/demo', cfg_options: dict | None = None,
             device: str = 'cpu', precision: str = 'fp32', html: bool = False) -> dict[str, Path]:
    """Match ``src`` to ``trg`` and write the matches and the warped source to ``out_dir``.

    Writes ``matches.png`` (both images side by side, a line per match),
    ``warp.png`` (the source warped onto the target by a thin-plate spline
    through the matches of a 12 x 12 source grid, beside the target) and
    ``matches.json`` (points, predictions, confidences) and, with ``html``,
    ``matches.html``, the interactive viewer (:func:`~corrkit.apis.viewer.write_viewer`).
    Images of any size are
    matched; the pictures are drawn on copies whose longest side is at most
    :data:`DISPLAY_SIDE`, while ``matches.json`` keeps the pixels of the images as
    given.

    Args:
        src: Source image path.
        trg: Target image path.
        config: Matcher config.
        checkpoint: Optional checkpoint.
        kps: ``(N, 2)`` source points in source pixels; an 8 × 8 grid by default.
        out_dir: Output folder (created).
        cfg_options: Config overrides.
        device: Device to run on.
        precision: ``'fp32'``, ``'bf16'`` or ``'fp16'`` (autocast), see :func:`match_pair`.
        html: Also write the viewer page.

    Returns:
        Paths of the written files, by kind (``'matches'``, ``'warp'``, ``'json'``,
        ``'html'``).
    """
    model = init_matcher(config, checkpoint, device=device, cfg_options=cfg_options)
    src_img, trg_img = load_image(src), load_image(trg)
    points = source_grid(src_img.height, src_img.width) if kps is None else np.asarray(kps)
    if kps is not None:
        check_inside(points, src_img, 'source keypoints')
    dense = source_grid(src_img.height, src_img.width, n=12, margin=0.02)
    both: MatchResult = match_pair(model, src_img, trg_img, np.concatenate([points, dense]),
                                   precision)
    result = MatchResult(both.src_kps[:len(points)], both.trg_kps[:len(points)],
                         both.confidence[:len(points)], both.flow, both.src_size, both.trg_size)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {'matches': out / 'matches.png', 'warp': out / 'warp.png',
             'json': out / 'matches.json'}
    # pictures are drawn on copies at most DISPLAY_SIDE pixels on a side: a
    # 10,000-pixel photo would otherwise need a full-size spline warp
    (src_show, src_scale), (trg_show, trg_scale) = shrink(src_img), shrink(trg_img)
    src_all, trg_all = both.src_kps * src_scale, both.trg_kps * trg_scale
    draw_matches(src_show, trg_show, src_all[:len(points)],
                 trg_all[:len(points)]).save(paths['matches'])
    warped = tps_warp(src_show, trg_show, src_all[len(points):], trg_all[len(points):])
    side_by_side(warped, trg_show).save(paths['warp'])
    with open(paths['json'], 'w') as f:
        json.dump({'source': os.fspath(src), 'target': os.fspath(trg),
                   'config': os.fspath(config), 'checkpoint': checkpoint,
                   'src_kps': result.src_kps.tolist(), 'trg_kps': result.trg_kps.tolist(),
                   'confidence': result.confidence.tolist()}, f, indent=1)
    if html:
        paths['html'] = write_viewer(model, src_img, trg_img, result, out / 'matches.html',
                                     precision, {'model': os.fspath(config),
                                                 'checkpoint': checkpoint or 'none'})
    return paths


#: Longest side of the images the demo draws on (matches are found at the model's size).
DISPLAY_SIDE = 1024


def shrink(image: Image.Image, side: int = DISPLAY_SIDE) -> tuple[Image.Image, float]:
    """``image`` scaled down so its longest side is at most ``side``, and the scale.

    Examples:
        >>> small, scale = shrink(Image.new('RGB', (4000, 1000)))
        >>> small.size, scale
        ((1024, 256), 0.256)
    """
    scale = min(1.0, side / max(image.size))
    if scale == 1.0:
        return image, 1.0
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.BILINEAR, reducing_gap=3.0), scale


def side_by_side(left: Image.Image, right: Image.Image, gap: int = 8) -> Image.Image:
    """Two images of the same size next to each other on white."""
    canvas = Image.new('RGB', (left.width + gap + right.width, max(left.height, right.height)),
                       'white')
    canvas.paste(left, (0, 0))
    canvas.paste(right, (left.width + gap, 0))
    return canvas
