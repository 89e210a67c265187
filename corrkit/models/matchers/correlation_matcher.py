"""The matcher template: backbone → (neck) → correlation → refiner → flow head → transfer."""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ...ops import flow_to_target, normalized_to_pixel, pixel_to_normalized, transfer_keypoints
from ...registry import CORRELATIONS, FLOW_HEADS, LOSSES, MODELS, REFINERS
from ...structures import PairDataSample
from ...layers.base import check_shape
from ..base import CorrelationBuilder, FlowHead, FlowPrediction, MatchOutputs, Refiner
# the shared helpers' old home: importing them from here keeps working
from .feature_matcher import (ComponentCfg, FeatureMatcher, _check_mode, _pad_keypoints,
                              build_with_derived)

__all__ = ['CorrelationMatcher', 'ComponentCfg', 'build_with_derived']


@MODELS.register_module()
class CorrelationMatcher(FeatureMatcher):
    """A semantic matcher assembled from a backbone, a correlation builder, a refiner and a head.

    Both images of a pair go through one backbone call, then through the
    optional neck (an adapter between backbone and correlation, e.g. a learned
    aggregation of foundation features). ``in_channels`` of the neck,
    correlation builder, refiner and head are derived from the component before
    them (and the neck's ``in_strides`` from the backbone). Keypoints are
    transferred with the soft sampler (Eq. 11 of TransforMatcher) and trained
    with the configured loss.

    Each stage is a public method that checks its component's output against
    the role's contract: :meth:`features` (backbone and neck, split into source
    and target), :meth:`correlate`, :meth:`refine`, :meth:`predict_flow` and
    :meth:`transfer`. :meth:`extract` and :meth:`forward` compose them; code that
    runs or times one stage (``match_pair``, the benchmark) calls them too.

    Args:
        backbone: Config of a :class:`~corrkit.models.base.Backbone`.
        correlation: Config of a :class:`~corrkit.models.base.CorrelationBuilder`.
        refiner: Config of a :class:`~corrkit.models.base.Refiner`.
        head: Config of a :class:`~corrkit.models.base.FlowHead`.
        neck: Config of a :class:`~corrkit.models.base.Neck` between backbone and
            correlation; ``None`` (the default) correlates the backbone's maps.
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
                 head: ComponentCfg, neck: ComponentCfg | None = None,
                 loss: ComponentCfg = dict(type='KeypointL2Loss'),
                 input_size: int | Sequence[int] = 240, train_tau: float = 0.1,
                 test_tau: float = 0.05, channels_last: bool = True,
                 data_preprocessor: dict | None = dict(type='PairDataPreprocessor'),
                 init_cfg: dict | None = None):
        super().__init__(backbone, neck, input_size, channels_last, data_preprocessor, init_cfg)
        self.correlation = build_with_derived(CORRELATIONS, correlation, CorrelationBuilder,
                                              in_channels=self.matched_channels)
        self.refiner = build_with_derived(REFINERS, refiner, Refiner,
                                          in_channels=self.correlation.out_channels)
        self.head = build_with_derived(FLOW_HEADS, head, FlowHead,
                                       in_channels=self.refiner.out_channels)
        self.loss_fn = loss if isinstance(loss, nn.Module) else LOSSES.build(loss)
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
        _check_mode(mode, data_samples)
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
