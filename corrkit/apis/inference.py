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
from PIL import Image
from torch import Tensor

from ..config import load_config
from ..engine.checkpoint_hook import check_state_dict_keys
from ..models.base import ImageFeatures, ImageFrame, Matcher, PointMatches
from ..ops import flow_to_target, normalized_grid
from ..registry import MODELS
from ..utils.acceleration import as_full_precision, autocast
from ..utils.image import ImageLike, image_to_tensor, load_image
from ..utils.text import first_line
from .allocator import tune_cpu_allocator
from .pretrained import pretrained_weights



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

    The model is prepared for inference (``Matcher.prepare_inference``: the
    ResNet and torchvision backbones fold BatchNorm into their convolutions at
    inference, undone by training mode or ``.to()``). On the CPU it also keeps
    freed large blocks in the heap for reuse
    (:func:`~corrkit.apis.allocator.tune_cpu_allocator`, process-wide;
    ``CORRKIT_TUNE_MALLOC=0`` turns it off).

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
    if torch.device(device).type == 'cpu':
        # a matcher's activations exceed glibc's 32 MiB mmap threshold at batch 8: without
        # this every forward maps and zeroes them anew (the flagship's batch-8 forward:
        # 1.39 against 1.30 x the bare network)
        tune_cpu_allocator()
    model = model.to(device).eval()
    if isinstance(model, Matcher):
        model.prepare_inference()  # after .to() and eval(), which would undo it
    return model


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
            correlation matcher's peak match probability around the point, a
            keypoint matcher's head's confidence.
        flow: ``(2, Hf, Wf)`` dense source-to-target flow, normalised target
            coordinates (``target = source_grid + flow``).
        src_size: ``(H, W)`` of the source image.
        trg_size: ``(H, W)`` of the target image.
        scores: ``(Hf, Wf, Ht, Wt)`` each flow-grid cell's scores over a grid
            spanning the target (a correlation matcher's match probabilities, a
            keypoint matcher's clamped similarities), or None unless asked for
            (``match_pair(..., scores=True)``).
        src_frame: Where the source sat in the model's input (its resize).
        trg_frame: Where the target sat in the model's input.
    """

    src_kps: Tensor
    trg_kps: Tensor
    confidence: Tensor
    flow: Tensor
    src_size: tuple[int, int]
    trg_size: tuple[int, int]
    scores: Tensor | None = None
    src_frame: ImageFrame | None = None
    trg_frame: ImageFrame | None = None

    def grid_matches(self) -> tuple[Tensor, Tensor]:
        """The flow grid's cell centres and their predicted targets, pixels of the images.

        Row ``i * Wf + j`` is cell ``(i, j)``, as in :attr:`scores` flattened.

        Returns:
            ``(Hf * Wf, 2)`` source points and ``(Hf * Wf, 2)`` target points.

        Raises:
            ValueError: If the result carries no frames.
        """
        if self.src_frame is None or self.trg_frame is None:
            raise ValueError('this MatchResult carries no image frames (made by match_pair)')
        hf, wf = self.flow.shape[-2:]
        cells = normalized_grid(hf, wf, dtype=self.flow.dtype)
        targets = flow_to_target(self.flow[None])[0]
        return (self.src_frame.from_normalized(cells.flatten(1).T),
                self.trg_frame.from_normalized(targets.flatten(1).T))


def encode_images(model: torch.nn.Module, images: Sequence[Image.Image], precision: str = 'fp32',
                  mirrored: bool = False) -> ImageFeatures:
    """Resize decoded images to the model's input, normalise them and encode them (stage 1).

    Args:
        model: A :class:`~corrkit.models.base.Matcher` from :func:`init_matcher`.
        images: RGB images of any sizes (from :func:`~corrkit.utils.image.load_image`).
        precision: ``'fp32'``, or ``'bf16'`` / ``'fp16'`` autocast.
        mirrored: Also encode the images mirrored (a matcher that ``mirrors_source``).

    Returns:
        Their features, each image with its frame.
    """
    size = tuple(model.input_size)
    batch = torch.stack([image_to_tensor(image, size) for image in images])
    inputs = model.data_preprocessor.normalize_images(batch)
    frames = [ImageFrame((image.height, image.width), size) for image in images]
    with autocast(precision, inputs.device):
        return model.encode(inputs, frames, mirrored=mirrored)


def encode_pair(model: torch.nn.Module, src: Image.Image, trg: Image.Image,
                precision: str = 'fp32') -> tuple[ImageFeatures, ImageFeatures]:
    """Encode a source and a target: one backbone call, or two when the model mirrors
    its sources (the mirrored source is encoded with the source alone)."""
    if model.mirrors_source:
        return (encode_images(model, [src], precision, mirrored=True),
                encode_images(model, [trg], precision))
    both = encode_images(model, [src, trg], precision)
    return both[0], both[1]


def as_points(src_kps: Any) -> Tensor:
    """``(N, 2)`` points from a list, array or tensor, as float32.

    Raises:
        ValueError: If the points are not ``(N, 2)``.
    """
    kps = torch.as_tensor(np.asarray(src_kps, dtype=np.float64), dtype=torch.float32)
    if kps.numel() == 0:  # no points: [] as well as (0, 2)
        kps = kps.reshape(0, 2)
    if kps.dim() != 2 or kps.shape[-1] != 2:
        raise ValueError(f'src_kps must be (N, 2) pixels (x, y), got shape {tuple(kps.shape)}')
    return kps


@torch.inference_mode()
def match_pair(model: torch.nn.Module, src_image: ImageLike, trg_image: ImageLike,
               src_kps: Sequence[Sequence[float]] | np.ndarray | Tensor | None = None,
               precision: str = 'fp32', scores: bool = False) -> MatchResult:
    """Match two images of any size and mode with a matcher from :func:`init_matcher`.

    Each image is decoded once and encoded once (:func:`encode_pair`), then the
    points are matched (``Matcher.match_points``, one call). Both images are
    resized to ``model.input_size``; points are mapped through each image's
    frame, so inputs and outputs are in the pixels of the images as given.

    Args:
        model: A :class:`~corrkit.models.base.Matcher` (``CorrelationMatcher``,
            ``KeypointMatcher``) with a ``data_preprocessor``.
        src_image: Source image: path, PIL image or array.
        trg_image: Target image: path, PIL image or array.
        src_kps: ``(N, 2)`` source points ``(x, y)`` in source pixels; by default
            the centres of the flow grid's cells.
        precision: ``'fp32'``, or ``'bf16'`` / ``'fp16'`` to run the network under
            autocast (see :mod:`corrkit.utils.acceleration`); the results are fp32.
        scores: Also return each flow-grid cell's scores over the target
            (:attr:`MatchResult.scores`); the grid is matched in the same call.

    Returns:
        A :class:`MatchResult`.

    Raises:
        ValueError: If ``src_kps`` is not ``(N, 2)``.
    """
    src, trg = load_image(src_image), load_image(trg_image)
    kps = None if src_kps is None else as_points(src_kps)
    src_feats, trg_feats = encode_pair(model, src, trg, precision)
    with autocast(precision, src_feats.maps[0].device):
        out = model.match_points(src_feats, None if kps is None else kps[None], trg_feats,
                                 maps=scores, flow=True, grid=scores)
    out = _float(out)
    n = len(out.src_kps[0]) if kps is None else len(kps)
    grid_scores = None
    if scores:  # the grid's rows come last
        hf, wf = out.flow.shape[-2:]
        grid_scores = out.maps[0, -hf * wf:].unflatten(0, (hf, wf)).cpu()
    result_kps = out.src_kps[0] if kps is None else kps  # the caller's points exactly
    return MatchResult(result_kps.cpu(), out.trg_kps[0, :n].cpu(), out.confidence[0, :n].cpu(),
                       out.flow[0].cpu(), (src.height, src.width), (trg.height, trg.width),
                       grid_scores, src_feats.frames[0], trg_feats.frames[0])


def _float(matches: PointMatches) -> PointMatches:
    """Matches computed under autocast, in fp32."""
    return PointMatches(*(as_full_precision(t) if isinstance(t, Tensor) else t for t in matches))
