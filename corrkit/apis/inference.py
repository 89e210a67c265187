"""What notebooks and tools call: build a matcher, match a pair of images."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch import Tensor

from ..engine.checkpoint_hook import check_state_dict_keys
from ..models.base import PointMatcher
from ..ops import (normalized_grid, normalized_to_pixel, pixel_to_normalized, rescale_points,
                   soft_sampler_weights)
from ..registry import MODELS
from ..utils.acceleration import autocast
from ..config import load_config
from ..utils.image import ImageLike, image_to_tensor, load_image
from ..utils.text import first_line
from .pretrained import pretrained_weights

#: Reduced float types a matcher may return under autocast; results are given in fp32.
HALF_TYPES = (torch.float16, torch.bfloat16)


def init_matcher(config: str | os.PathLike | Config | dict,
                 checkpoint: str | os.PathLike | None = None,
                 device: str | torch.device = 'cpu',
                 cfg_options: dict[str, Any] | None = None) -> torch.nn.Module:
    """Build a matcher from a config, load its weights and put it in eval mode.

    Args:
        config: A model name (:func:`corrkit.list_models`), config path,
            ``Config`` or dict (with a ``model`` key).
        checkpoint: Optional checkpoint path (an mmengine checkpoint with a
            ``state_dict`` or a bare state dict, or a training work directory);
            loaded with ``weights_only=True``. ``'auto'`` (model names only) loads
            the model index's published weights, fetched into torch.hub's or
            Hugging Face's cache and hash-checked (see
            :func:`~corrkit.apis.pretrained.pretrained_weights`).
        device: Device to put the model on.
        cfg_options: Dotted-key overrides, e.g. ``{'model.backbone.pretrained': False}``.

    Returns:
        The matcher, in eval mode, with the merged config as ``model.cfg``.

    Raises:
        KeyError: If the config has no ``model``.
        FileNotFoundError: If the checkpoint does not exist.
        WeightsError: With ``checkpoint='auto'``, if the weights are not published,
            cannot be fetched or do not match their SHA-256.
    """
    cfg = load_config(config, cfg_options)
    if 'model' not in cfg:
        raise KeyError(f"config '{cfg.filename}' has no 'model' entry")
    if isinstance(checkpoint, str) and checkpoint == 'auto':
        options, checkpoint = pretrained_weights(config, cfg)
        cfg.merge_from_dict(options)
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'corrkit')):
        model = MODELS.build(cfg.model)
    if checkpoint is not None:
        load_weights(model, checkpoint)
    model.cfg = cfg
    return model.to(device).eval()


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint file, or the newest checkpoint of a training work directory.

    Raises:
        FileNotFoundError: If the path does not exist, or a directory has no
            ``last_checkpoint`` file (mmengine writes it after each save).
    """
    path = Path(path)
    if not path.is_dir():
        return path
    pointer = path / 'last_checkpoint'
    if not pointer.is_file():
        raise FileNotFoundError(f"'{path}' is a directory without a 'last_checkpoint' file; "
                                f"pass a checkpoint file or a training work directory")
    newest = Path(pointer.read_text().strip())
    return newest if newest.is_file() else path / newest.name  # the folder may have moved


def load_weights(model: torch.nn.Module, checkpoint: str | os.PathLike) -> None:
    """Load a checkpoint's weights into ``model`` strictly, without executing code.

    Args:
        model: The model.
        checkpoint: Path of an mmengine checkpoint or a bare state dict, or a
            training work directory (see :func:`resolve_checkpoint`).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file cannot be read as a checkpoint.
        RuntimeError: If keys do not match; the message lists them.
    """
    path = os.fspath(resolve_checkpoint(checkpoint))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    try:
        ckpt = torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # noqa: BLE001 - truncated zip, foreign pickle, not a checkpoint
        raise ValueError(f"checkpoint '{path}' cannot be read with torch.load(weights_only=True)"
                         f' ({type(err).__name__}: {first_line(err)}); it may be truncated, '
                         f'not a checkpoint, or hold objects other than tensors') from err
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else ckpt
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint '{path}' holds a {type(state).__name__}, not a state dict")
    check_state_dict_keys(state, model, f"checkpoint '{path}'")
    model.load_state_dict(state)


@dataclass
class MatchResult:
    """The answer of :func:`match_pair`.

    Attributes:
        src_kps: ``(N, 2)`` source points ``(x, y)``, pixels of the source image.
        trg_kps: ``(N, 2)`` their predicted matches, pixels of the target image.
        confidence: ``(N,)`` how sure the matcher is of each match, in ``[0, 1]``: a
            flow matcher's peak match probability around the point, a
            ``PointMatcher``'s own confidence (a keypoint head's).
        flow: ``(2, Hf, Wf)`` dense source-to-target flow, normalised target
            coordinates (``target = source_grid + flow``).
        src_size: ``(H, W)`` of the source image.
        trg_size: ``(H, W)`` of the target image.
        scores: ``(Hf, Wf, Ht, Wt)`` each flow-grid cell's scores over a grid
            spanning the target (a flow matcher's match probabilities, a point
            matcher's clamped similarities), or None unless asked for
            (``match_pair(..., scores=True)``).
    """

    src_kps: Tensor
    trg_kps: Tensor
    confidence: Tensor
    flow: Tensor
    src_size: tuple[int, int]
    trg_size: tuple[int, int]
    scores: Tensor | None = None


@torch.inference_mode()
def match_pair(model: torch.nn.Module, src_image: ImageLike, trg_image: ImageLike,
               src_kps: Sequence[Sequence[float]] | np.ndarray | Tensor | None = None,
               precision: str = 'fp32', scores: bool = False) -> MatchResult:
    """Match two images of any size and mode with a matcher from :func:`init_matcher`.

    Both images are resized to ``model.input_size``; keypoints are mapped
    through the resize and back, so inputs and outputs are in the pixels of the
    images as given.

    A :class:`~corrkit.models.base.PointMatcher` (``KeypointMatcher``) matches
    the points with its ``match_points``; any other model is treated as a flow
    matcher: its flow and match probabilities come from ``extract``, the points
    go through its ``transfer`` stage and the confidence is the peak match
    probability around each point.

    Args:
        model: A matcher with ``input_size`` and a ``data_preprocessor``: a
            :class:`~corrkit.models.base.PointMatcher`, or ``CorrelationMatcher``
            (or anything with its ``extract`` and ``transfer`` stages and ``test_tau``).
        src_image: Source image: path, PIL image or array.
        trg_image: Target image: path, PIL image or array.
        src_kps: ``(N, 2)`` source points ``(x, y)`` in source pixels; by default
            the centres of the flow grid's cells.
        precision: ``'fp32'``, or ``'bf16'`` / ``'fp16'`` to run the network under
            autocast (see :mod:`corrkit.utils.acceleration`); a flow matcher's
            keypoints are transferred in fp32 either way, a ``PointMatcher``'s
            ``match_points`` runs under autocast as a whole.
        scores: Also return each flow-grid cell's scores over the target
            (:attr:`MatchResult.scores`); a point matcher computes them with its
            ``match_scores``.

    Returns:
        A :class:`MatchResult`.

    Raises:
        ValueError: If ``src_kps`` is not ``(N, 2)``.
    """
    src, trg = load_image(src_image), load_image(trg_image)
    src_size, trg_size = (src.height, src.width), (trg.height, trg.width)
    size = tuple(model.input_size)
    pair = torch.stack([image_to_tensor(src, size), image_to_tensor(trg, size)])
    inputs = model.data_preprocessor(dict(inputs=pair[None]))['inputs']
    if isinstance(model, PointMatcher):
        return _match_points(model, inputs, src_kps, src_size, trg_size, precision, scores)
    with autocast(precision, inputs.device):
        out = model.extract(inputs)
    flow, probs = (t.float() if t.dtype in HALF_TYPES else t for t in (out.flow[0], out.probs[0]))
    hf, wf = flow.shape[-2:]
    dtype = flow.dtype
    if src_kps is None:
        grid = normalized_grid(hf, wf, device=flow.device, dtype=dtype).flatten(1).T
        kps_frame = normalized_to_pixel(grid, size)
        kps = rescale_points(kps_frame, size, src_size)
    else:
        kps = torch.as_tensor(np.asarray(src_kps, dtype=np.float64), dtype=dtype,
                              device=flow.device)
        if kps.dim() != 2 or kps.shape[-1] != 2:
            raise ValueError(f'src_kps must be (N, 2) pixels (x, y), got shape {tuple(kps.shape)}')
        kps_frame = rescale_points(kps, src_size, size)
    trg_frame = model.transfer(flow[None], kps_frame[None], size)[0]
    trg_kps = rescale_points(trg_frame, size, trg_size)
    # each source cell's peak match probability, sampled around the points like the flow
    weights = soft_sampler_weights(pixel_to_normalized(kps_frame, size)[None], hf, wf,
                                   model.test_tau)[0]
    confidence = weights @ probs.flatten(2).amax(-1).flatten()
    return MatchResult(kps.cpu(), trg_kps.cpu(), confidence.cpu(), flow.cpu(), src_size, trg_size,
                       probs.cpu() if scores else None)


def _as_points(src_kps: Any, device: torch.device, dtype: torch.dtype) -> Tensor:
    kps = torch.as_tensor(np.asarray(src_kps, dtype=np.float64), dtype=dtype, device=device)
    if kps.dim() != 2 or kps.shape[-1] != 2:
        raise ValueError(f'src_kps must be (N, 2) pixels (x, y), got shape {tuple(kps.shape)}')
    return kps


def _match_points(model: PointMatcher, inputs: Tensor, src_kps: Any, src_size: tuple[int, int],
                  trg_size: tuple[int, int], precision: str, scores: bool) -> MatchResult:
    """:func:`match_pair` for a :class:`~corrkit.models.base.PointMatcher`."""
    size = tuple(inputs.shape[-2:])
    kps_frame = None
    if src_kps is not None:
        kps_frame = rescale_points(_as_points(src_kps, inputs.device, inputs.dtype), src_size,
                                   size)[None]
    with autocast(precision, inputs.device):
        out = model.match_points(inputs, kps_frame)
    src_frame, trg_frame, confidence, flow = (
        t[0].float() if t.dtype in HALF_TYPES else t[0] for t in out)
    kps = rescale_points(src_frame, size, src_size)
    if src_kps is not None:  # the caller's points exactly, not their round trip through the frame
        kps = _as_points(src_kps, kps.device, kps.dtype)
    trg_kps = rescale_points(trg_frame, size, trg_size)
    grid_scores = None
    if scores:  # the flow grid's cell centres, as a flow matcher's probabilities are indexed
        hf, wf = flow.shape[-2:]
        cells = normalized_grid(hf, wf, device=flow.device, dtype=flow.dtype).flatten(1).T
        with autocast(precision, inputs.device):
            found = model.match_scores(inputs, normalized_to_pixel(cells, size)[None])[0]
        grid_scores = found.float().unflatten(0, (hf, wf)).cpu()
    return MatchResult(kps.cpu(), trg_kps.cpu(), confidence.cpu(), flow.cpu(), src_size, trg_size,
                       grid_scores)
