"""The keypoint matcher: backbone → neck → per-keypoint similarity → keypoint head."""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ...ops import (keypoint_similarity, mutual_nn_agreement, normalized_grid,
                    normalized_to_pixel, pixel_to_normalized, resize_features, target_to_flow)
from ...registry import KEYPOINT_HEADS, LOSSES, MODELS
from ...structures import PairDataSample
from ...errors import ContractError
from ...layers.base import check_shape, describe
from ..base import KeypointHead, KeypointPrediction, PointMatcher, PointMatches, SimilarityLoss
from .feature_matcher import (ComponentCfg, FeatureMatcher, _check_mode, _pad_keypoints,
                              build_with_derived)


@MODELS.register_module()
class KeypointMatcher(FeatureMatcher, PointMatcher):
    """A semantic matcher that compares each source keypoint with every target location.

    Foundation features want high resolution (a 60 × 60 grid at 840 px), where a
    4D correlation (60⁴ scores per pair) does not fit. This matcher never builds
    it: the source feature of each keypoint is sampled bilinearly at the
    keypoint (sub-pixel), its cosine with every target cell gives a similarity
    ``(B, K, Ht, Wt)``, and a :class:`~corrkit.models.base.KeypointHead` reads it.
    Memory grows with ``K · Ht · Wt``, never with ``Hs · Ws · Ht · Wt``.

    With several maps (a backbone without an aggregating neck, e.g. hypercolumns
    at two strides), every map's normalised target features are resized to the
    finest target grid (bilinear, ``align_corners=True``), each map gives a
    cosine similarity there and the similarity is their mean. That is
    ``MultiChannelCorrelation`` followed by ``MeanRefiner`` restricted to the
    keypoints' rows (with ``clamp_negative=True``, exactly, on cell centres):
    the keypoint matcher on a hypercolumn backbone is the zero-shot baseline of
    ``configs/zeroshot_mobilenetv2.py`` without its 4D volume.

    Stages, each a public method that checks its component's output against the
    role's contract: :meth:`features` (one backbone call on both images, then
    the neck), :meth:`similarity`, :meth:`predict_keypoints`. On top:
    :meth:`match_keypoints` (normalised keypoints, in chunks),
    :meth:`match_points` (pixels, what ``match_pair`` calls) and
    :meth:`dense_flow` (a grid of source points, in chunks).

    Test-time pose alignment (``pose_alignment=True``, after GeoAware-SC,
    CVPR 2024): at inference the source is also encoded mirrored (one more
    backbone call, on the source images only), and per pair the matcher keeps
    the hypothesis whose dense features agree better with the target's
    (:meth:`align_pose`, :func:`~corrkit.ops.mutual_nn_agreement`; no mask).
    For a mirrored pair the source keypoints are mirrored (``x → -x``,
    normalised) and matched on the mirrored features; the predictions are
    target positions and need no mapping back, and the flow stays indexed by
    the original source grid. The choice is ``pred_flipped`` on each data
    sample in ``predict`` mode and :attr:`last_flipped` after every call that
    matches. Training (``loss`` mode) matches as is: the loss teaches the
    features, and a choice of pose has no gradient.

    Args:
        backbone: Config of a :class:`~corrkit.models.base.Backbone`.
        head: Config of a :class:`~corrkit.models.base.KeypointHead`.
        neck: Config of a :class:`~corrkit.models.base.Neck`; ``None`` matches the
            backbone's maps directly.
        loss: Config of a loss in ``LOSSES``: a
            :class:`~corrkit.models.base.SimilarityLoss` is called as
            ``loss(similarity, prediction, target, valid)``, any other keypoint
            loss (``KeypointL2Loss``) as ``loss(prediction.kps, target, valid)``;
            targets normalised.
        input_size: ``(H, W)`` (or one int) the model matches at; tools resize
            images to it.
        clamp_negative: Clamp every map's cosine scores at zero before the mean
            (the ReLU of ``MultiChannelCorrelation``).
        chunk: Most keypoints matched at once by :meth:`dense_flow` and
            :meth:`match_points`; memory is ``B · chunk · Ht · Wt`` scores.
        channels_last: Run the backbone in channels-last memory format.
        pose_alignment: At inference, also match the mirrored source and keep,
            per pair, the pose whose matches agree better (see above).
        data_preprocessor: Config of the data preprocessor.
        init_cfg: mmengine initialisation config.

    Attributes:
        last_flipped: ``(B,)`` bool, which pairs the last inference call matched
            with the source mirrored (all ``False`` without pose alignment);
            ``None`` before the first.

    Raises:
        ValueError: On a bad ``input_size`` or ``chunk``.

    Shape:
        - inputs: ``(B, 2, 3, H, W)``, pair index 0 = source, 1 = target
        - ``tensor`` mode output: the dense flow ``(B, 2, Hs, Ws)`` over the
          cells of the finest source grid (:meth:`dense_flow`)
    """

    def __init__(self, backbone: ComponentCfg, head: ComponentCfg,
                 neck: ComponentCfg | None = None,
                 loss: ComponentCfg = dict(type='KeypointCrossEntropyLoss'),
                 input_size: int | Sequence[int] = 240, clamp_negative: bool = False,
                 chunk: int = 1024, channels_last: bool = True, pose_alignment: bool = False,
                 data_preprocessor: dict | None = dict(type='PairDataPreprocessor'),
                 init_cfg: dict | None = None):
        super().__init__(backbone, neck, input_size, channels_last, data_preprocessor, init_cfg)
        self.head = build_with_derived(KEYPOINT_HEADS, head, KeypointHead)
        self.loss_fn = loss if isinstance(loss, nn.Module) else LOSSES.build(loss)
        if chunk < 1:
            raise ValueError(f'{type(self).__name__}.chunk must be >= 1, got {chunk}')
        self.clamp_negative = clamp_negative
        self.chunk = chunk
        self.pose_alignment = pose_alignment
        self.last_flipped: Tensor | None = None

    def similarity(self, src_feats: Sequence[Tensor], kps: Tensor,
                   trg_feats: Sequence[Tensor]) -> Tensor:
        """Stage 2: each keypoint's cosine similarity with every cell of the finest target grid.

        Args:
            src_feats: The source maps from :meth:`features`.
            kps: Normalised source keypoints ``(x, y)``.
            trg_feats: The target maps.

        Returns:
            The mean over maps of the per-map cosine scores (see the class docs).

        Shape:
            - src_feats, trg_feats: lists of ``(B, C_j, h_j, w_j)``
            - kps: ``(B, K, 2)``
            - output: ``(B, K, Ht, Wt)``, ``(Ht, Wt)`` the largest target map size
        """
        size = max((tuple(t.shape[-2:]) for t in trg_feats), key=lambda hw: hw[0] * hw[1])
        total = None
        for src, trg in zip(src_feats, trg_feats):
            if tuple(trg.shape[-2:]) != size:  # normalise first, like MultiChannelCorrelation
                trg = resize_features(F.normalize(trg, dim=1, eps=1e-5), size)
            sim = keypoint_similarity(src, kps.to(src.dtype), trg)
            if self.clamp_negative:
                sim = sim.clamp(min=0)
            total = sim if total is None else total + sim  # a running sum: one map in memory
        return total / len(src_feats)

    def predict_keypoints(self, similarity: Tensor) -> KeypointPrediction:
        """Stage 3: the head's target keypoints and confidences, checked.

        Raises:
            ContractError: If the head's output breaks the KeypointHead contract.

        Shape:
            - similarity: ``(B, K, Ht, Wt)``
            - output: kps ``(B, K, 2)`` normalised, confidence ``(B, K)``
        """
        pred = self.head(similarity)
        if not isinstance(pred, KeypointPrediction):
            if not isinstance(pred, (tuple, list)) or len(pred) != 2:
                raise ContractError(f'{describe(self.head)} breaks the KeypointHead contract: '
                                    f'expected a KeypointPrediction, got {type(pred).__name__}')
            pred = KeypointPrediction(*pred)
        b, k = similarity.shape[:2]
        check_shape(pred.kps, (b, k, 2), 'B K 2', 'KeypointHead', self.head)
        check_shape(pred.confidence, (b, k), 'B K', 'KeypointHead', self.head)
        return pred

    def match_keypoints(self, src_feats: Sequence[Tensor], kps: Tensor,
                        trg_feats: Sequence[Tensor], chunk: int | None = None
                        ) -> KeypointPrediction:
        """Stages 2 and 3 on at most ``chunk`` keypoints at a time, so memory stays bounded.

        Args:
            src_feats: The source maps from :meth:`features`.
            kps: Normalised source keypoints.
            trg_feats: The target maps.
            chunk: Keypoints per step (default: ``self.chunk``).

        Returns:
            Normalised target keypoints and confidences, as in one step.

        Shape:
            - kps: ``(B, N, 2)``
            - output: kps ``(B, N, 2)``, confidence ``(B, N)``
        """
        step = chunk or self.chunk
        parts = [self.predict_keypoints(self.similarity(src_feats, part, trg_feats))
                 for part in kps.split(step, dim=1)]
        return KeypointPrediction(torch.cat([p.kps for p in parts], 1),
                                  torch.cat([p.confidence for p in parts], 1))

    def align_pose(self, inputs: Tensor, src_feats: Sequence[Tensor],
                   trg_feats: Sequence[Tensor]) -> tuple[list[Tensor], Tensor]:
        """Per pair, the source features of the pose (as is or mirrored) that agrees better.

        Without ``pose_alignment`` the features are returned as they are. With
        it, the mirrored source images go through :meth:`encode`, and each
        hypothesis is scored by :func:`~corrkit.ops.mutual_nn_agreement` with
        the target on the finest grid; a tie keeps the source as is. With
        several maps, each is L2-normalised and resized to the finest grid and
        they are concatenated, so that the cosine of the concatenation is the
        mean of the per-map cosines (the matcher's similarity, unclamped).
        Memory is bounded by the score's chunks (``self.chunk`` cells).

        Args:
            inputs: The normalised image pairs ``src_feats`` come from.
            src_feats: The source maps from :meth:`features`.
            trg_feats: The target maps.

        Returns:
            The chosen source maps (the mirrored pairs' maps mirrored, so read
            them at mirrored points, :func:`mirror_points`) and which pairs were
            mirrored, ``(B,)`` bool; also stored in :attr:`last_flipped`.

        Shape:
            - inputs: ``(B, 2, 3, H, W)``
            - src_feats, trg_feats, output maps: lists of ``(B, C_j, h_j, w_j)``
        """
        flipped = torch.zeros(inputs.shape[0], dtype=torch.bool, device=inputs.device)
        if self.pose_alignment:
            images = inputs[:, 0].flip(-1)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            mirrored = self.encode(images)
            trg = _agreement_features(trg_feats)
            plain = mutual_nn_agreement(_agreement_features(src_feats), trg, chunk=self.chunk)
            other = mutual_nn_agreement(_agreement_features(mirrored), trg, chunk=self.chunk)
            flipped = other > plain
            src_feats = [torch.where(flipped[:, None, None, None], m, s)
                         for s, m in zip(src_feats, mirrored)]
        self.last_flipped = flipped
        return list(src_feats), flipped

    def dense_flow(self, inputs: Tensor, grid: Sequence[int] | None = None,
                   chunk: int | None = None) -> Tensor:
        """The flow of a grid of source points, matched in chunks of keypoints.

        Args:
            inputs: Normalised image pairs.
            grid: ``(Hf, Wf)`` of the source points (default: the finest source map).
            chunk: Points matched at once (default: ``self.chunk``); memory is
                ``B · chunk · Ht · Wt`` scores.

        Returns:
            Source-to-target flow in normalised target coordinates
            (``target = source_grid + flow``), as ``CorrelationMatcher``'s.

        Shape:
            - inputs: ``(B, 2, 3, H, W)``
            - output: ``(B, 2, Hf, Wf)``
        """
        src, trg = self.features(inputs)
        src, flipped = self.align_pose(inputs, src, trg)
        return self._flow(src, trg, grid, chunk, flipped)[0]

    def _flow(self, src: Sequence[Tensor], trg: Sequence[Tensor], grid: Sequence[int] | None,
              chunk: int | None, flipped: Tensor) -> tuple[Tensor, KeypointPrediction]:
        """The flow over a grid of source points and the grid points' predictions; a
        mirrored pair's features are read at the mirrored points, so the flow stays indexed
        by the original grid."""
        hf, wf = grid or max((tuple(s.shape[-2:]) for s in src), key=lambda hw: hw[0] * hw[1])
        b = src[0].shape[0]
        points = normalized_grid(hf, wf, device=src[0].device, dtype=src[0].dtype)
        points = rearrange(points, 'xy h w -> (h w) xy').expand(b, -1, -1)
        pred = self.match_keypoints(src, mirror_points(points, flipped), trg, chunk)
        target = rearrange(pred.kps, 'b (h w) xy -> b xy h w', h=hf, w=wf)
        return target_to_flow(target), pred

    def match_points(self, inputs: Tensor, src_kps: Tensor | None = None) -> PointMatches:
        """Match source points in pixels of the frame (:class:`~corrkit.models.base.PointMatcher`).

        One backbone call gives both the points' matches and the dense flow of
        :meth:`dense_flow` at its default grid.

        Args:
            inputs: Normalised image pairs; their ``(H, W)`` is the frame.
            src_kps: Source points ``(x, y)``, pixels of the frame; ``None``
                matches the cell centres of the flow's grid.

        Returns:
            Points, matches (pixels of the frame), the head's confidences and the flow.

        Shape:
            - inputs: ``(B, 2, 3, H, W)``
            - src_kps: ``(B, N, 2)``
        """
        size = tuple(inputs.shape[-2:])
        src, trg = self.features(inputs)
        src, flipped = self.align_pose(inputs, src, trg)
        flow, grid_pred = self._flow(src, trg, None, None, flipped)
        if src_kps is None:
            points = normalized_grid(*flow.shape[-2:], device=flow.device, dtype=flow.dtype)
            src_kps = normalized_to_pixel(rearrange(points, 'xy h w -> (h w) xy'), size)
            pred = grid_pred
            src_kps = src_kps.expand(flow.shape[0], -1, -1)
        else:
            pred = self.match_keypoints(
                src, mirror_points(pixel_to_normalized(src_kps, size), flipped), trg)
        return PointMatches(src_kps, normalized_to_pixel(pred.kps, size), pred.confidence, flow)

    def match_scores(self, inputs: Tensor, src_kps: Tensor) -> Tensor:
        """Each source point's similarity with every cell of the finest target grid, clamped
        at zero (:meth:`~corrkit.models.base.PointMatcher.match_scores`).

        Args:
            inputs: Normalised image pairs; their ``(H, W)`` is the frame.
            src_kps: Source points ``(x, y)``, pixels of the frame.

        Shape:
            - inputs: ``(B, 2, 3, H, W)``
            - src_kps: ``(B, N, 2)``
            - output: ``(B, N, Ht, Wt)``
        """
        src, trg = self.features(inputs)
        src, flipped = self.align_pose(inputs, src, trg)
        kps = mirror_points(pixel_to_normalized(src_kps, tuple(inputs.shape[-2:])), flipped)
        return torch.cat([self.similarity(src, part, trg).clamp(min=0)
                          for part in kps.split(self.chunk, dim=1)], 1)

    def forward(self, inputs: Tensor, data_samples: list[PairDataSample] | None = None,
                mode: str = 'tensor') -> Any:
        """mmengine entry point.

        Args:
            inputs: Normalised image pairs ``(B, 2, 3, H, W)``.
            data_samples: One :class:`~corrkit.structures.PairDataSample` per pair;
                required in ``loss`` and ``predict`` modes.
            mode: ``'tensor'`` returns the dense flow ``(B, 2, Hs, Ws)`` of
                :meth:`dense_flow` (like ``CorrelationMatcher``'s, so tools that
                time or check a forward work unchanged); ``'loss'`` a dict with
                ``loss_kps``; ``'predict'`` the data samples with ``pred_trg_kps``
                (pixels of the model's frame) and ``pred_confidence`` set, and
                ``pred_flipped`` (a bool tensor) with pose alignment. ``loss`` mode
                never aligns the pose.

        Returns:
            Depends on ``mode``, see above.

        Raises:
            ValueError: On an unknown mode or missing data samples.
        """
        if mode == 'tensor':
            return self.dense_flow(inputs)
        _check_mode(mode, data_samples)
        size = inputs.shape[-2:]
        src_feats, trg_feats = self.features(inputs)
        src, trg, valid = _pad_keypoints(data_samples, inputs.device, src_feats[0].dtype,
                                         need_targets=mode == 'loss')
        src = pixel_to_normalized(src, size)
        if mode == 'loss':
            similarity = self.similarity(src_feats, src, trg_feats)
            pred = self.predict_keypoints(similarity)
            trg = pixel_to_normalized(trg, size)
            if isinstance(self.loss_fn, SimilarityLoss):
                return {'loss_kps': self.loss_fn(similarity, pred, trg, valid)}
            return {'loss_kps': self.loss_fn(pred.kps, trg, valid)}
        src_feats, flipped = self.align_pose(inputs, src_feats, trg_feats)
        pred = self.match_keypoints(src_feats, mirror_points(src, flipped), trg_feats)
        pixels = normalized_to_pixel(pred.kps, size)
        for i, sample in enumerate(data_samples):
            k = len(sample.src_kps)
            sample.pred_trg_kps = pixels[i, :k]
            sample.pred_confidence = pred.confidence[i, :k]
            if self.pose_alignment:
                sample.pred_flipped = flipped[i]
        return data_samples


def mirror_points(kps: Tensor, flipped: Tensor) -> Tensor:
    """Mirror the normalised points of the flagged pairs horizontally (``x → -x``).

    With ``align_corners=True`` coordinates, a point at ``x`` on an image is at
    ``-x`` on the image flipped left to right.

    Shape:
        - kps: ``(B, K, 2)``
        - flipped: ``(B,)`` bool
        - output: ``(B, K, 2)``

    Examples:
        >>> mirror_points(torch.tensor([[[0.5, 0.2]], [[0.5, 0.2]]]), torch.tensor([True, False]))
        tensor([[[-0.5000,  0.2000]],
        <BLANKLINE>
                [[ 0.5000,  0.2000]]])
    """
    sign = torch.ones(2, device=kps.device, dtype=kps.dtype)
    sign[0] = -1
    return torch.where(flipped[:, None, None], kps * sign, kps)


def _agreement_features(feats: Sequence[Tensor]) -> Tensor:
    """The maps, L2-normalised, resized to the finest grid and concatenated (see
    :meth:`KeypointMatcher.align_pose`)."""
    size = max((tuple(f.shape[-2:]) for f in feats), key=lambda hw: hw[0] * hw[1])
    maps = [F.normalize(resize_features(F.normalize(f, dim=1, eps=1e-5), size)
                        if tuple(f.shape[-2:]) != size else f, dim=1, eps=1e-5) for f in feats]
    return torch.cat(maps, 1)
