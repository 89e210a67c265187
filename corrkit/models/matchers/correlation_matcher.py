"""The matcher template: backbone → correlation → refiner → flow head → keypoint transfer."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from mmengine.model import BaseModel
from mmengine.registry import Registry
from torch import Tensor, nn

from ...ops import flow_to_target, normalized_to_pixel, pixel_to_normalized, transfer_keypoints
from ...registry import (BACKBONES, CORRELATIONS, FLOW_HEADS, LOSSES, MODELS, REFINERS,
                         constructor_parameters)
from ...structures import PairDataSample
from ...utils import ContractError, check_shape, describe
from ..base import (Backbone, ConfigConflictError, CorrelationBuilder, FlowHead, FlowPrediction,
                    MatchOutputs, Refiner)

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


def _pad_keypoints(samples: Sequence[PairDataSample], device: torch.device, dtype: torch.dtype,
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


@MODELS.register_module()
class CorrelationMatcher(BaseModel):
    """A semantic matcher assembled from a backbone, a correlation builder, a refiner and a head.

    Both images of a pair go through one backbone call. ``in_channels`` of the
    correlation builder, refiner and head are derived from the component before
    them. Keypoints are transferred with the soft sampler (Eq. 11 of
    TransforMatcher) and trained with the configured loss.

    Each stage is a public method that checks its component's output against
    the role's contract: :meth:`features` (backbone, split into source and
    target), :meth:`correlate`, :meth:`refine`, :meth:`predict_flow` and
    :meth:`transfer`. :meth:`extract` and :meth:`forward` compose them; code that
    runs or times one stage (``match_pair``, the benchmark) calls them too.

    Args:
        backbone: Config of a :class:`~corrkit.models.base.Backbone`.
        correlation: Config of a :class:`~corrkit.models.base.CorrelationBuilder`.
        refiner: Config of a :class:`~corrkit.models.base.Refiner`.
        head: Config of a :class:`~corrkit.models.base.FlowHead`.
        loss: Config of a keypoint loss in ``LOSSES``.
        input_size: ``(H, W)`` (or one int) the model is trained at; tools resize
            images to it.
        train_tau: Soft-sampler threshold (normalised units) in ``loss`` mode.
        test_tau: Soft-sampler threshold in ``predict`` mode.
        channels_last: Run the backbone in channels-last memory format (about a
            quarter faster for convolutional backbones on CPU; same results up to
            floating-point rounding).
        data_preprocessor: Config of the data preprocessor.
        init_cfg: mmengine initialisation config.

    Shape:
        - inputs: ``(B, 2, 3, H, W)``, pair index 0 = source, 1 = target
        - ``tensor`` mode output: flow ``(B, 2, Hf, Wf)``
    """

    def __init__(self, backbone: ComponentCfg, correlation: ComponentCfg, refiner: ComponentCfg,
                 head: ComponentCfg, loss: ComponentCfg = dict(type='KeypointL2Loss'),
                 input_size: int | Sequence[int] = 240, train_tau: float = 0.1,
                 test_tau: float = 0.05, channels_last: bool = True,
                 data_preprocessor: dict | None = dict(type='PairDataPreprocessor'),
                 init_cfg: dict | None = None):
        if isinstance(data_preprocessor, dict):  # corrkit's registry, whatever the default scope
            data_preprocessor = MODELS.build(data_preprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.backbone = build_with_derived(BACKBONES, backbone, Backbone)
        self.correlation = build_with_derived(CORRELATIONS, correlation, CorrelationBuilder,
                                              in_channels=list(self.backbone.out_channels))
        self.refiner = build_with_derived(REFINERS, refiner, Refiner,
                                          in_channels=self.correlation.out_channels)
        self.head = build_with_derived(FLOW_HEADS, head, FlowHead,
                                       in_channels=self.refiner.out_channels)
        self.loss_fn = loss if isinstance(loss, nn.Module) else LOSSES.build(loss)
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f'input_size must be an int or (H, W), got {input_size!r}')
        self.input_size: tuple[int, int] = (int(size[0]), int(size[1]))
        self.channels_last = channels_last
        if channels_last:
            self.backbone.to(memory_format=torch.channels_last)
        self.train_tau = train_tau
        self.test_tau = test_tau

    def extract(self, inputs: Tensor) -> MatchOutputs:
        """Run the pipeline and return every intermediate, each checked against its contract.

        Composes the stage methods :meth:`features`, :meth:`correlate`,
        :meth:`refine` and :meth:`predict_flow`.

        Args:
            inputs: Normalised image pairs.

        Returns:
            The raw and refined correlations, the flow and the match probabilities.

        Shape:
            - inputs: ``(B, 2, 3, H, W)``
        """
        corr = self.correlate(*self.features(inputs))
        refined = self.refine(corr)
        pred = self.predict_flow(refined)
        return MatchOutputs(corr, refined, pred.flow, pred.probs)

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
        if inputs.dim() != 5 or inputs.shape[1] != 2 or inputs.shape[2] != 3:
            raise ValueError(f'a matcher takes RGB image pairs of shape (B, 2, 3, H, W), '
                             f'got {tuple(inputs.shape)}')
        images = inputs.flatten(0, 1)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def features(self, inputs: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        """Stage 1: one backbone call on both images of every pair, checked and split.

        Args:
            inputs: Normalised image pairs.

        Returns:
            The source images' feature maps and the target images'.

        Raises:
            ValueError: If ``inputs`` are not RGB image pairs.
            ContractError: If the backbone's maps break its contract (naming its class).

        Shape:
            - inputs: ``(B, 2, 3, H, W)``
            - output: two lists of ``(B, C_i, H_i, W_i)``, one entry per
              ``backbone.out_channels``
        """
        images = self.backbone_input(inputs)
        b, _, _, h, w = inputs.shape
        feats = self.backbone(images)
        self._check_features(feats, b, h, w)
        pairs = [f.unflatten(0, (b, 2)) for f in feats]
        return [f[:, 0] for f in pairs], [f[:, 1] for f in pairs]

    def correlate(self, src_feats: Sequence[Tensor], trg_feats: Sequence[Tensor]) -> Tensor:
        """Stage 2: the multi-channel 4D correlation, checked.

        Shape:
            - src_feats, trg_feats: lists of ``(B, C_i, H_i, W_i)``
            - output: ``(B, L, Hs, Ws, Ht, Wt)``
        """
        corr = self.correlation(src_feats, trg_feats)
        check_shape(corr, (src_feats[0].shape[0], self.correlation.out_channels,
                           None, None, None, None),
                    'B L Hs Ws Ht Wt', 'CorrelationBuilder', self.correlation)
        return corr

    def refine(self, corr: Tensor) -> Tensor:
        """Stage 3: the refined correlation, checked.

        Shape:
            - corr: ``(B, L, Hs, Ws, Ht, Wt)``
            - output: ``(B, L', Hs, Ws, Ht, Wt)``
        """
        refined = self.refiner(corr)
        check_shape(refined, (corr.shape[0], self.refiner.out_channels, *corr.shape[2:]),
                    "B L' Hs Ws Ht Wt", 'Refiner', self.refiner)
        return refined

    def predict_flow(self, refined: Tensor) -> FlowPrediction:
        """Stage 4: the head's flow and match probabilities, checked.

        Shape:
            - refined: ``(B, L', Hs, Ws, Ht, Wt)``
            - output: flow ``(B, 2, Hf, Wf)``, probs ``(B, Hf, Wf, Ht', Wt')`` with
              ``Hf = f * Hs`` and ``Ht' = f * Ht``, ``f = head.upsample_factor``
        """
        pred = self.head(refined)
        if not isinstance(pred, FlowPrediction):
            pred = FlowPrediction(*pred)
        b = refined.shape[0]
        f = self.head.upsample_factor
        hs, ws, ht, wt = refined.shape[2:]
        check_shape(pred.flow, (b, 2, hs * f, ws * f), 'B 2 Hf Wf', 'FlowHead', self.head)
        check_shape(pred.probs, (b, hs * f, ws * f, ht * f, wt * f), 'B Hf Wf Ht Wt',
                    'FlowHead', self.head)
        return pred

    def transfer_normalized(self, flow: Tensor, src_kps: Tensor, valid: Tensor | None = None,
                            tau: float | None = None) -> Tensor:
        """Stage 5 in normalised coordinates: the soft sampler (Eq. 11) through the flow.

        Args:
            flow: Source-to-target flow, normalised target coordinates.
            src_kps: Normalised source keypoints ``(x, y)``.
            valid: Which keypoints are real (default: all); padded ones come back
                as zeros.
            tau: Sampler threshold (default: ``test_tau``).

        Returns:
            Predicted normalised target keypoints.

        Shape:
            - flow: ``(B, 2, Hf, Wf)``
            - src_kps: ``(B, K, 2)``
            - valid: ``(B, K)``, bool
            - output: ``(B, K, 2)``
        """
        if valid is None:
            valid = torch.ones(src_kps.shape[:-1], dtype=torch.bool, device=src_kps.device)
        return transfer_keypoints(flow_to_target(flow), src_kps, valid,
                                  self.test_tau if tau is None else tau)

    def transfer(self, flow: Tensor, src_kps: Tensor, size: Sequence[int],
                 valid: Tensor | None = None, tau: float | None = None) -> Tensor:
        """Stage 5: transfer source keypoints to the target, in pixels of the model's frame.

        Args:
            flow: Source-to-target flow, normalised target coordinates.
            src_kps: Source keypoints ``(x, y)``, pixels of the ``size`` frame.
            size: ``(H, W)`` of the frame the images were given at.
            valid: Which keypoints are real (default: all); padded ones come back
                as the pixel of normalised ``(0, 0)``.
            tau: Sampler threshold (default: ``test_tau``).

        Returns:
            Predicted target keypoints, pixels of the ``size`` frame.

        Shape:
            - flow: ``(B, 2, Hf, Wf)``
            - src_kps: ``(B, K, 2)``
            - valid: ``(B, K)``, bool
            - output: ``(B, K, 2)``
        """
        pred = self.transfer_normalized(flow, pixel_to_normalized(src_kps, size), valid, tau)
        return normalized_to_pixel(pred, size)

    def _check_features(self, feats: list[Tensor], n: int, h: int, w: int) -> None:
        expected = len(self.backbone.out_channels)
        if not isinstance(feats, (list, tuple)) or len(feats) != expected:
            got = len(feats) if isinstance(feats, (list, tuple)) else type(feats).__name__
            raise ContractError(f'{describe(self.backbone)} breaks the Backbone contract: '
                                f'expected a list of {expected} feature maps (one per '
                                f'out_channels entry), got {got}')
        sizes = self.backbone.feature_sizes(h, w)
        for i, (feat, c, (fh, fw)) in enumerate(zip(feats, self.backbone.out_channels, sizes)):
            check_shape(feat, (2 * n, c, fh, fw), f'N C_{i} H_{i} W_{i}', 'Backbone',
                        self.backbone)

    def forward(self, inputs: Tensor, data_samples: list[PairDataSample] | None = None,
                mode: str = 'tensor') -> Any:
        """mmengine entry point.

        Args:
            inputs: Normalised image pairs ``(B, 2, 3, H, W)``.
            data_samples: One :class:`~corrkit.structures.PairDataSample` per pair;
                required in ``loss`` and ``predict`` modes.
            mode: ``'tensor'`` returns the flow ``(B, 2, Hf, Wf)``; ``'loss'`` a dict of
                losses; ``'predict'`` the data samples with ``pred_trg_kps`` (pixels of
                the model's frame) and ``pred_flow`` set.

        Returns:
            Depends on ``mode``, see above.

        Raises:
            ValueError: On an unknown mode or missing data samples.
        """
        if mode == 'tensor':
            return self.extract(inputs).flow
        if mode not in ('loss', 'predict'):
            raise ValueError(f"mode must be 'tensor', 'loss' or 'predict', got {mode!r}")
        if data_samples is None:
            raise ValueError(f"mode '{mode}' needs data_samples with source keypoints")
        flow = self.extract(inputs).flow
        size = inputs.shape[-2:]
        src, trg, valid = _pad_keypoints(data_samples, flow.device, flow.dtype,
                                         need_targets=mode == 'loss')
        if mode == 'loss':  # the loss compares normalised keypoints
            pred = self.transfer_normalized(flow, pixel_to_normalized(src, size), valid,
                                            self.train_tau)
            return {'loss_kps': self.loss_fn(pred, pixel_to_normalized(trg, size), valid)}
        pred_pixels = self.transfer(flow, src, size, valid, self.test_tau)
        for i, sample in enumerate(data_samples):
            sample.pred_trg_kps = pred_pixels[i, :len(sample.src_kps)]
            sample.pred_flow = flow[i]
        return data_samples
