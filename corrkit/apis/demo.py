"""The demo behind ``tools/demo.py``: match two images and write what was found."""
from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from ..utils.fileio import atomic_path
from ..utils.image import ImageLike, load_image
from ..visualization import (display_points, draw_matches, shrink, side_by_side, tps_warp,
                             write_match_viewer)
from .inference import MatchResult, init_matcher, match_pair
from .points import check_inside, source_grid


def run_demo(src: str | os.PathLike, trg: str | os.PathLike, config: str | os.PathLike,
             checkpoint: str | None = None, kps: Sequence | np.ndarray | None = None,
             out_dir: str | os.PathLike = 'work_dirs/demo', cfg_options: dict | None = None,
             device: str = 'cpu', precision: str = 'fp32', html: bool = False) -> dict[str, Path]:
    """Match ``src`` to ``trg`` and write the matches and the warped source to ``out_dir``.

    Writes ``matches.png`` (both images side by side, a line per match),
    ``warp.png`` (the source warped onto the target by a thin-plate spline
    through the matches of a 12 x 12 source grid, beside the target) and
    ``matches.json`` (points, predictions, confidences) and, with ``html``,
    ``matches.html``, the interactive viewer (:func:`write_viewer`). Each image is
    decoded once and encoded once, and everything is matched in one call
    (:func:`~corrkit.apis.match_pair`). Images of any size are matched; the
    pictures are drawn on copies whose longest side is at most 1024 pixels
    (:func:`~corrkit.visualization.shrink`), while ``matches.json`` keeps the pixels
    of the images as given.

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
    src_img, trg_img = load_image(src), load_image(trg)  # each file decoded once
    points = source_grid(src_img.height, src_img.width) if kps is None else np.asarray(kps)
    if kps is not None:
        check_inside(points, (src_img.height, src_img.width), 'source keypoints')
    dense = source_grid(src_img.height, src_img.width, n=12, margin=0.02)
    # one match: the points, the warp's grid and, for the page, the flow grid's scores
    both = match_pair(model, src_img, trg_img, np.concatenate([points, dense]), precision,
                      scores=html)
    n = len(points)
    result = replace(both, src_kps=both.src_kps[:n], trg_kps=both.trg_kps[:n],
                     confidence=both.confidence[:n])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {'matches': out / 'matches.png', 'warp': out / 'warp.png',
             'json': out / 'matches.json'}
    # pictures are drawn on copies at most DISPLAY_SIDE pixels on a side: a
    # 10,000-pixel photo would otherwise need a full-size spline warp
    src_show, trg_show = shrink(src_img), shrink(trg_img)
    src_all = display_points(both.src_kps, both.src_size, src_show)
    trg_all = display_points(both.trg_kps, both.trg_size, trg_show)
    draw_matches(src_show, trg_show, src_all[:n], trg_all[:n]).save(paths['matches'])
    side_by_side(tps_warp(src_show, trg_show, src_all[n:], trg_all[n:]),
                 trg_show).save(paths['warp'])
    with atomic_path(paths['json']) as tmp:
        tmp.write_text(json.dumps({
            'source': os.fspath(src), 'target': os.fspath(trg), 'config': os.fspath(config),
            'checkpoint': checkpoint, 'src_kps': result.src_kps.tolist(),
            'trg_kps': result.trg_kps.tolist(), 'confidence': result.confidence.tolist()},
            indent=1))
    if html:
        paths['html'] = write_viewer(src_img, trg_img, result, out / 'matches.html',
                                     {'model': os.fspath(config),
                                      'checkpoint': checkpoint or 'none'})
    return paths


#: Most grid points per side the viewer page carries (a finer flow grid is subsampled).
GRID_SIDE = 32


def write_viewer(src_image: ImageLike, trg_image: ImageLike, result: MatchResult,
                 path: str | os.PathLike, meta: Mapping[str, Any] | None = None,
                 grid_side: int = GRID_SIDE) -> Path:
    """Write the viewer page of a pair from a :func:`match_pair` result with its scores.

    The page lists ``result``'s keypoints; clicking the source shows the nearest
    point of the flow grid, its match and its scores over the target (match
    probabilities of a correlation matcher, similarities of a keypoint matcher),
    all taken from ``result``: nothing is matched again.

    Args:
        src_image: Source image (decoded: a PIL image, or a path).
        trg_image: Target image.
        result: From ``match_pair(..., scores=True)``.
        path: The HTML file to write.
        meta: Facts shown under the title (model name, checkpoint, ...).
        grid_side: At most this many grid points per side (every k-th row and
            column of a finer flow grid).

    Returns:
        The page's path.

    Raises:
        ValueError: If ``result`` has no scores.
    """
    if result.scores is None:
        raise ValueError('write_viewer needs a match_pair(..., scores=True) result')
    hf, wf = result.scores.shape[:2]
    rows = torch.arange(0, hf, math.ceil(hf / grid_side))
    cols = torch.arange(0, wf, math.ceil(wf / grid_side))
    keep = (rows[:, None] * wf + cols[None, :]).flatten()
    grid_src, grid_trg = result.grid_matches()
    return write_match_viewer(
        path, src_image, trg_image, src_kps=result.src_kps, trg_kps=result.trg_kps,
        confidence=result.confidence, grid_src=grid_src[keep], grid_trg=grid_trg[keep],
        heatmaps=result.scores[rows][:, cols].flatten(0, 1), title='corrkit matches', meta=meta)
