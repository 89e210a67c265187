"""The matcher template: backbone → (neck) → correlation → refiner → flow head → transfer."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from einops import rearrange
from torch import Tensor, nn

from ...layers.base import check_shape
from ...ops import (flow_to_target, normalized_to_pixel, pixel_to_normalized, soft_sample,
                    soft_sampler_weights, transfer_keypoints)
from ...registry import CORRELATIONS, FLOW_HEADS, LOSSES, MODELS, REFINERS
from ...structures import PairDataSample
from ...utils.acceleration import as_full_precision
from ..base import (CorrelationBuilder, FlowHead, FlowPrediction, ImageFeatures, MatchOutputs,
                    PointMatches, Refiner)
from .feature_matcher import (ComponentCfg, FeatureMatcher, build_with_derived, check_mode,
                              check_same_batch, pad_keypoints, points_and_grid)

__all__ = ['CorrelationMatcher', 'ComponentCfg', 'build_with_derived']


@MODELS.register_module()
class CorrelationMatcher(FeatureMatcher):
    """A semantic matcher assembled from a backbone, a correlation builder, a refiner and a head.

    Images are encoded once each (:meth:`encode`, the backbone then the
    optional neck (an adapter between backbone and correlation, e.g. a learned
    aggregation of foundation features), and any two encoded images are matched
    (:meth:`match_points`, :meth:`dense_flow`). ``in_channels`` of the neck,
    correlation builder, refiner and head are derived from the component before
    them (and the neck's ``in_strides`` from the backbone). Keypoints are
    transferred with the soft sampler (Eq. 11 of TransforMatcher) and trained
    with the configured loss.

    Each stage is a public method that checks its component's output against
    the role's contract: :meth:`encode` (backbone and neck, per image),
    :meth:`correlate`, :meth:`refine`, :meth:`predict_flow` and :meth:`transfer`.
    :meth:`correspond` composes the middle three on two encoded batches;
    :meth:`match_points`, :meth:`dense_flow` and :meth:`forward` build on it, and
    code that times one stage (the benchmark) calls the stages themselves.

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

    def correspond(self, src: ImageFeatures, trg: ImageFeatures) -> MatchOutputs:
        """Correlation, refiner and head on two encoded batches, pair by pair, each checked.

        Composes the stage methods :meth:`correlate`, :meth:`refine` and
        :meth:`predict_flow`.

        Args:
            src: Encoded source images (:meth:`encode`).
            trg: Encoded target images, as many.

        Returns:
            The raw and refined correlations, the flow and the match probabilities.

        Raises:
            ValueError: If the batches do not pair up.
        """
        check_same_batch(src, trg)
        corr = self.correlate(list(src.maps), list(trg.maps))
        refined = self.refine(corr)
        pred = self.predict_flow(refined)
        return MatchOutputs(corr, refined, pred.flow, pred.probs)

    def dense_flow(self, src: ImageFeatures, trg: ImageFeatures) -> Tensor:
        """The flow ``(B, 2, Hf, Wf)`` of every cell of the head's grid (:meth:`correspond`)."""
        return self.correspond(src, trg).flow

    def timed_stages(self, src: ImageFeatures, points: Tensor, trg: ImageFeatures
                     ) -> dict[str, Callable[[], object]]:
        """``correlation``, ``refiner``, ``head`` and ``transfer`` (:meth:`transfer` of
        ``points`` read as pixels of the input frame: the soft sampler alone, without the
        confidences and maps :meth:`match_points` adds), each fed the previous stage's
        output (what the benchmark times)."""
        corr = self.correlate(list(src.maps), list(trg.maps))
        refined = self.refine(corr)
        flow = self.predict_flow(refined).flow
        size = src.frames[0].input_size
        return {
            'correlation': lambda: self.correlate(list(src.maps), list(trg.maps)),
            'refiner': lambda: self.refine(corr),
            'head': lambda: self.predict_flow(refined),
            'transfer': lambda: self.transfer(flow, points, size),
        }

    def match_points(self, src: ImageFeatures, points: Tensor | None, trg: ImageFeatures, *,
                     maps: bool = False, flow: bool = False, grid: bool = False
                     ) -> PointMatches:
        """Match source points through the flow with the soft sampler (Eq. 11).

        One set of sampler weights per point (``test_tau``) reads the predicted
        targets, the confidence (each source cell's peak match probability) and,
        with ``maps``, the match probabilities over the target grid.

        Args:
            src: Encoded source images.
            points: ``(B, N, 2)`` source points, pixels of the source images;
                ``None`` matches every cell of the flow's grid.
            trg: Encoded target images.
            maps: Also return each point's match probabilities ``(B, N, Ht', Wt')``.
            flow: Also return the flow.
            grid: Also match every cell of the flow's grid, after the points.

        Returns:
            Points and matches in pixels of their images, confidences in ``[0, 1]``.
        """
        out = self.correspond(src, trg)
        # under autocast the network's outputs may be reduced floats: points are sampled in fp32
        flow_, probs = as_full_precision(out.flow), as_full_precision(out.probs)
        hf, wf = flow_.shape[-2:]
        kps, src_kps = points_and_grid(src, points, (hf, wf), grid)
        weights = soft_sampler_weights(kps.to(flow_.dtype), hf, wf, self.test_tau)
        target = soft_sample(flow_to_target(flow_), weights)
        confidence = soft_sample(probs.flatten(3).amax(-1)[:, None], weights)[..., 0]
        point_maps = None
        if maps:
            ht, wt = probs.shape[-2:]
            by_cell = rearrange(probs, 'b hf wf ht wt -> b (ht wt) hf wf')
            point_maps = soft_sample(by_cell, weights).unflatten(-1, (ht, wt))
        return PointMatches(src_kps, trg.from_normalized(target), confidence, point_maps,
                            flow_ if flow else None)

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
        if mode != 'tensor':
            check_mode(mode, data_samples)
        src, trg = self.encode_pairs(inputs)
        if mode == 'tensor':
            return self.dense_flow(src, trg)
        # pixels in full precision whatever autocast made of the maps
        dtype = torch.promote_types(src.maps[0].dtype, torch.float32)
        kps, trg_kps, valid = pad_keypoints(data_samples, inputs.device, dtype,
                                            need_targets=mode == 'loss')
        if mode == 'loss':  # the loss compares normalised keypoints
            size = inputs.shape[-2:]
            pred = self.transfer_normalized(self.dense_flow(src, trg),
                                            pixel_to_normalized(kps, size), valid, self.train_tau)
            return {'loss_kps': self.loss_fn(pred, pixel_to_normalized(trg_kps, size), valid)}
        out = self.match_points(src, kps, trg, flow=True)
        # invalid keypoints come back as the centre, as the soft sampler leaves them
        pred = torch.where(valid[..., None], out.trg_kps,
                           trg.from_normalized(torch.zeros_like(out.trg_kps)))
        for i, sample in enumerate(data_samples):
            sample.pred_trg_kps = pred[i, :len(sample.src_kps)]
            sample.pred_flow = out.flow[i]
        return data_samples
