"""What every corrkit matcher shares: building components, the feature stage, keypoint padding."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from mmengine.model import BaseModel
from mmengine.registry import Registry
from einops import rearrange
from torch import Tensor, nn

from ...registry import BACKBONES, MODELS, NECKS, constructor_parameters
from ...structures import PairDataSample
from ...errors import ContractError
from ...layers.base import check_shape, describe
from ...ops import normalized_grid
from ..base import Backbone, ConfigConflictError, ImageFeatures, ImageFrame, Matcher, Neck

ComponentCfg = dict | nn.Module


def build_with_derived(registry: Registry, cfg: ComponentCfg, role: type,
                       **derived: Any) -> nn.Module:
    """Build a component, injecting the sizes the matcher derives.

    A derived value is passed only if the component's constructor takes an
    argument of that name. A config that sets such an argument to another
    value raises, because mmengine's ``default_args`` would silently lose to it.

    Args:
        registry: Registry to build from.
        cfg: Component config (a dict with ``type``) or an already built module.
        role: The role's abstract base class; the result must be an instance.
        **derived: Derived constructor arguments.

    Returns:
        The built component.

    Raises:
        ConfigConflictError: If the config contradicts a derived value.
        TypeError: If the component does not implement ``role``.
    """
    if isinstance(cfg, nn.Module):
        module = cfg
    else:
        cfg = dict(cfg)
        obj_type = cfg.get('type')
        cls = registry.get(obj_type) if isinstance(obj_type, str) else obj_type
        params = constructor_parameters(cls) if cls is not None else {}
        for key, value in derived.items():
            if key not in params:
                continue
            if key in cfg and not _same(cfg[key], value):
                raise ConfigConflictError(
                    f'{obj_type}.{key}={cfg[key]!r} in the config contradicts the value the '
                    f'matcher derives from the other components ({value!r}); remove the key '
                    f'from the config')
            cfg[key] = value
        module = registry.build(cfg)
    if not isinstance(module, role):
        raise TypeError(f'{describe(module)} is used as the {role.__name__} (registry '
                        f'{registry.scope}::{registry.name}) but does not subclass '
                        f'corrkit.models.base.{role.__name__}')
    return module


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return list(a) == list(b)
    return a == b


def check_mode(mode: str, data_samples: Sequence[PairDataSample] | None) -> None:
    """Raise ``ValueError`` for a mode other than ``loss`` / ``predict`` (``tensor`` is handled
    before) or for those modes without data samples."""
    if mode not in ('loss', 'predict'):
        raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")
    if data_samples is None:
        raise ValueError(f"mode '{mode}' needs data_samples with source keypoints")


def pad_keypoints(samples: Sequence[PairDataSample], device: torch.device, dtype: torch.dtype,
                   need_targets: bool) -> tuple[Tensor, Tensor, Tensor]:
    """Stack variable-length keypoints into ``(B, K, 2)`` tensors and a ``(B, K)`` mask.

    Raises:
        ValueError: If a sample lacks ``src_kps`` (or ``trg_kps`` when
            ``need_targets``), or its keypoint fields differ in length.
    """
    for i, sample in enumerate(samples):
        fields = ('src_kps', 'trg_kps') if need_targets else ('src_kps',)
        for field in fields:
            if field not in sample:
                raise ValueError(f'data sample {i} has no {field}; this mode needs it')
        lengths = {f: len(getattr(sample, f)) for f in ('src_kps', 'trg_kps', 'kps_valid')
                   if f in sample}
        if len(set(lengths.values())) > 1:
            raise ValueError(f'data sample {i} has keypoint fields of different lengths: {lengths}')
    num = max((len(s.src_kps) for s in samples), default=0)
    src = torch.zeros(len(samples), num, 2, device=device, dtype=dtype)
    trg = torch.zeros_like(src)
    valid = torch.zeros(len(samples), num, device=device, dtype=torch.bool)
    for i, sample in enumerate(samples):
        k = len(sample.src_kps)
        src[i, :k] = sample.src_kps.to(device, dtype)
        if 'trg_kps' in sample:
            trg[i, :k] = sample.trg_kps.to(device, dtype)
        valid[i, :k] = sample.kps_valid.to(device) if 'kps_valid' in sample else True
    return src, trg, valid


class FeatureMatcher(BaseModel, Matcher):
    """The part every corrkit matcher shares: a backbone, an optional neck and the feature stage.

    Builds the data preprocessor, the backbone and the neck (its ``in_channels``
    and ``in_strides`` derived from the backbone), keeps the input size and the
    memory format, and implements the first stage of the
    :class:`~corrkit.models.base.Matcher` interface, :meth:`encode` (the backbone
    and the neck on a batch of images, each output checked against its role's
    contract, with the images' frames), and :meth:`encode_pairs` (one backbone
    call on both images of every pair, what the modes of ``forward`` run).
    Subclasses build their remaining components after calling ``super().__init__``
    and implement the second stage, ``match_points`` and ``dense_flow``.

    Args:
        backbone: Config of a :class:`~corrkit.models.base.Backbone`.
        neck: Config of a :class:`~corrkit.models.base.Neck`, or ``None``.
        input_size: ``(H, W)`` (or one int) the model is trained at; tools resize
            images to it.
        channels_last: Run the backbone in channels-last memory format (about a
            quarter faster for convolutional backbones on CPU; same results up to
            floating-point rounding).
        data_preprocessor: Config of the data preprocessor.
        init_cfg: mmengine initialisation config.

    Raises:
        ValueError: On a bad ``input_size``.
    """

    def __init__(self, backbone: ComponentCfg, neck: ComponentCfg | None,
                 input_size: int | Sequence[int], channels_last: bool,
                 data_preprocessor: dict | None, init_cfg: dict | None):
        if isinstance(data_preprocessor, dict):  # corrkit's registry, whatever the default scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_with_derived(BACKBONES, backbone, Backbone)
        self.neck = None if neck is None else build_with_derived(
            NECKS, neck, Neck, in_channels=list(self.backbone.out_channels),
            in_strides=list(self.backbone.strides))
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f'input_size must be an int or (H, W), got {input_size!r}')
        self.input_size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.channels_last = channels_last
        if channels_last:
            self.backbone.to(memory_format=torch.channels_last)

    def prepare_inference(self) -> None:
        """The backbone's :meth:`~corrkit.models.base.Backbone.prepare_inference`
        (BatchNorm folded into the convolutions of ResNet and torchvision backbones)."""
        self.backbone.prepare_inference()

    @property
    def matched_channels(self) -> list[int]:
        """Channels of the maps :meth:`encode` returns (the neck's, else the backbone's)."""
        return list((self.backbone if self.neck is None else self.neck).out_channels)

    def backbone_input(self, inputs: Tensor) -> Tensor:
        """The image batch as the backbone gets it: both images of every pair, in the
        matcher's memory format.

        Args:
            inputs: Normalised image pairs.

        Returns:
            The images, source and target of each pair next to each other.

        Raises:
            ValueError: If ``inputs`` are not RGB image pairs.

        Shape:
            - inputs: ``(B, 2, 3, H, W)``
            - output: ``(2B, 3, H, W)``
        """
        check_pairs(inputs)
        return self._memory_format(inputs.flatten(0, 1))

    def _memory_format(self, images: Tensor) -> Tensor:
        if self.channels_last:
            return images.contiguous(memory_format=torch.channels_last)
        return images

    def feature_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """The ``(h, w)`` of each map :meth:`encode` returns (after the neck) for an input
        of ``height`` × ``width``."""
        sizes = self.backbone.feature_sizes(height, width)
        return sizes if self.neck is None else self.neck.output_sizes(sizes)

    def encode(self, images: Tensor, frames: Sequence[ImageFrame] | None = None,
               mirrored: bool = False) -> ImageFeatures:
        """Stage 1: the backbone and the neck on a batch of images, checked, with their frames.

        Args:
            images: Normalised images at the input size of the frames.
            frames: One :class:`~corrkit.models.ImageFrame` per image (default:
                each image is its own frame).
            mirrored: Also encode the images mirrored left to right (one more
                backbone call; pose alignment reads them).

        Returns:
            The images' maps (and mirrored maps) and frames.

        Raises:
            ValueError: If ``images`` are not a batch of RGB images, or the frames
                do not match them.
            ContractError: If the backbone's or the neck's maps break their role's
                contract (naming the class).

        Shape:
            - images: ``(N, 3, H, W)``
            - output maps: list of ``(N, C_i, H_i, W_i)``, one per
              ``out_channels`` entry of the neck (of the backbone without one)
        """
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f'{type(self).__name__}.encode takes RGB images of shape '
                             f'(N, 3, H, W), got {tuple(images.shape)}')
        frames = check_frames(images, frames)
        maps = self.feature_maps(self._memory_format(images))
        flipped = self.feature_maps(self._memory_format(images.flip(-1))) if mirrored else None
        return ImageFeatures(tuple(maps), frames, flipped)

    def encode_pairs(self, inputs: Tensor, mirrored: bool = False
                     ) -> tuple[ImageFeatures, ImageFeatures]:
        """Stage 1 on image pairs: one backbone call on both images of every pair.

        What the ``tensor``, ``loss`` and ``predict`` modes run; each image is its
        own frame.

        Args:
            inputs: Normalised image pairs.
            mirrored: Also encode the sources mirrored (one more backbone call, on
                the sources only).

        Returns:
            The sources' features and the targets'.

        Raises:
            ValueError: If ``inputs`` are not RGB image pairs.

        Shape:
            - inputs: ``(B, 2, 3, H, W)``
        """
        b = inputs.shape[0]
        both = self.feature_maps(self.backbone_input(inputs))
        pairs = [f.unflatten(0, (b, 2)) for f in both]
        frames = (ImageFrame.identity(inputs.shape[-2:]),) * b
        flipped = None
        if mirrored:
            flipped = self.feature_maps(self._memory_format(inputs[:, 0].flip(-1)))
        return (ImageFeatures(tuple(f[:, 0] for f in pairs), frames, flipped),
                ImageFeatures(tuple(f[:, 1] for f in pairs), frames))

    def feature_maps(self, images: Tensor) -> list[Tensor]:
        """The backbone and the neck on a batch of images, checked: the maps alone.

        Raises:
            ContractError: If the backbone's or the neck's maps break their role's
                contract (naming the class).

        Shape:
            - images: ``(N, 3, H, W)``
            - output: list of ``(N, C_i, H_i, W_i)``
        """
        n, _, h, w = images.shape
        sizes = self.backbone.feature_sizes(h, w)
        feats = self.backbone(images)
        _check_maps(feats, self.backbone, 'Backbone', n, sizes)
        if self.neck is not None:
            sizes = self.neck.output_sizes(sizes)
            feats = self.neck(feats)
            _check_maps(feats, self.neck, 'Neck', n, sizes)
        return list(feats)


def check_pairs(inputs: Tensor) -> None:
    """Raise ``ValueError`` unless ``inputs`` are RGB image pairs ``(B, 2, 3, H, W)``."""
    if inputs.dim() != 5 or inputs.shape[1] != 2 or inputs.shape[2] != 3:
        raise ValueError(f'a matcher takes RGB image pairs of shape (B, 2, 3, H, W), '
                         f'got {tuple(inputs.shape)}')


def check_frames(images: Tensor, frames: Sequence[ImageFrame] | None) -> tuple[ImageFrame, ...]:
    """The frames of ``images`` (identity frames by default), checked against them.

    Raises:
        ValueError: If there is not one frame per image, or a frame's input size is
            not the images' size.
    """
    size = tuple(images.shape[-2:])
    if frames is None:
        return (ImageFrame.identity(size),) * images.shape[0]
    frames = tuple(frames)
    if len(frames) != images.shape[0]:
        raise ValueError(f'encode got {images.shape[0]} images but {len(frames)} frames')
    for i, frame in enumerate(frames):
        if tuple(frame.input_size) != size:
            raise ValueError(f'frame {i} is for an input of {tuple(frame.input_size)} but the '
                             f'images are {size}')
    return frames


def check_same_batch(src: ImageFeatures, trg: ImageFeatures) -> None:
    """Raise ``ValueError`` unless two encoded batches pair up image by image."""
    if len(src) != len(trg):
        raise ValueError(f'source and target batches must pair up: got {len(src)} source and '
                         f'{len(trg)} target images')


def points_and_grid(src: ImageFeatures, points: Tensor | None, grid_size: Sequence[int],
                    grid: bool) -> tuple[Tensor, Tensor]:
    """The source points of a match, in normalised coordinates and in source pixels.

    The given points come first; the cell centres of ``grid_size`` follow when
    ``grid`` is set or no points are given. The cells are built in normalised
    coordinates (no round trip through pixels).

    Shape:
        - points: ``(B, N, 2)`` source pixels
        - output: two ``(B, N (+ Hf * Wf), 2)``, normalised and pixels
    """
    normalized, pixels = [], []
    ref = src.maps[0]
    if points is not None:
        points = points.to(ref.device)
        normalized.append(src.to_normalized(points))
        pixels.append(points)
    if points is None or grid:
        dtype = torch.promote_types(ref.dtype, torch.float32)
        cells = rearrange(normalized_grid(*grid_size, device=ref.device, dtype=dtype),
                          'xy h w -> (h w) xy').expand(len(src), -1, -1)
        normalized.append(cells)
        pixels.append(src.from_normalized(cells))
    return torch.cat(normalized, 1), torch.cat(pixels, 1)


def _check_maps(feats: Any, component: Backbone | Neck, role: str, n: int,
                sizes: Sequence[tuple[int, int]]) -> None:
    """Raise :class:`ContractError` unless ``feats`` are ``component``'s maps of ``n`` images
    at ``sizes``."""
    expected = len(component.out_channels)
    if not isinstance(feats, (list, tuple)) or len(feats) != expected:
        got = len(feats) if isinstance(feats, (list, tuple)) else type(feats).__name__
        raise ContractError(f'{describe(component)} breaks the {role} contract: expected a '
                            f'list of {expected} feature maps (one per out_channels entry), '
                            f'got {got}')
    for i, (feat, c, (fh, fw)) in enumerate(zip(feats, component.out_channels, sizes)):
        check_shape(feat, (n, c, fh, fw), f'N C_{i} H_{i} W_{i}', role, component)
