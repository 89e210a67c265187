"""The interactive match viewer of ``corrkit match --html`` and ``tools/demo.py --html``."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

import torch

from ..utils.image import ImageLike, load_image
from ..visualization import write_match_viewer
from .inference import MatchResult, match_pair

__all__ = ['write_viewer']

#: Most grid points per side the page carries (a finer flow grid is subsampled).
GRID_SIDE = 32


def write_viewer(model: torch.nn.Module, src_image: ImageLike, trg_image: ImageLike,
                 result: MatchResult, path: str | os.PathLike, precision: str = 'fp32',
                 meta: Mapping[str, Any] | None = None, grid_side: int = GRID_SIDE) -> Path:
    """Match the flow grid of a pair with its scores and write the viewer page.

    The page lists ``result``'s keypoints; clicking the source shows the nearest
    grid point's match and its scores over the target (match probabilities of a
    flow matcher, similarities of a point matcher).

    Args:
        model: The matcher ``result`` came from.
        src_image: Source image.
        trg_image: Target image.
        result: The keypoints to list, from :func:`match_pair`.
        path: The HTML file to write.
        precision: As in :func:`match_pair`.
        meta: Facts shown under the title (model name, checkpoint, ...).
        grid_side: At most this many grid points per side (every k-th row and
            column of a finer flow grid).

    Returns:
        The page's path.
    """
    src, trg = load_image(src_image), load_image(trg_image)
    grid = match_pair(model, src, trg, None, precision, scores=True)
    hf, wf = grid.scores.shape[:2]
    rows = torch.arange(0, hf, math.ceil(hf / grid_side))
    cols = torch.arange(0, wf, math.ceil(wf / grid_side))
    keep = (rows[:, None] * wf + cols[None, :]).flatten()
    heatmaps = grid.scores[rows][:, cols].flatten(0, 1)
    return write_match_viewer(
        path, src, trg, src_kps=result.src_kps, trg_kps=result.trg_kps,
        confidence=result.confidence, grid_src=grid.src_kps[keep], grid_trg=grid.trg_kps[keep],
        heatmaps=heatmaps, title='corrkit matches', meta=meta)
