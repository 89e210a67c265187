"""The keypoint matcher: backbone → neck → per-keypoint similarity → keypoint head."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from ...ops import (keypoint_similarity, mutual_nn_agreement, pixel_to_normalized,
                    resize_features, target_to_flow)
from ...registry import KEYPOINT_HEADS, LOSSES, MODELS
from ...structures import PairDataSample
from ...errors import ContractError
from ...layers.base import check_shape, describe
from ..base import (ImageFeatures, KeypointHead, KeypointPrediction, PointMatches,
                    SimilarityLoss)
from .feature_matcher import (ComponentCfg, FeatureMatcher, build_with_derived, check_mode,
                              check_same_batch, pad_keypoints, points_and_grid)


@MODELS.register_module()
class KeypointMatcher(FeatureMatcher):
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
    role's contract: :meth:`encode` (the backbone, then the neck, per image),
    :meth:`similarity`, :meth:`predict_keypoints`. On top:
    :meth:`match_keypoints` (normalised keypoints, in chunks),
    :meth:`match_points` (pixels, what ``match_pair`` calls) and
    :meth:`dense_flow` (a grid of source points, in chunks), both on two
    encoded batches.

    Test-time pose alignment (``pose_alignment=True``, after GeoAware-SC,
    CVPR 2024): at inference the source is also encoded mirrored (one more
    backbone call, on the source images only: :attr:`mirrors_source`, and
    ``encode(..., mirrored=True)``), and per pair the matcher keeps
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
            src_feats: The source maps (``ImageFeatures.maps``).
            kps: Normalised source keypoints ``(x, y)``.
            trg_feats: The target maps.

        Returns:
            The mean over maps of the per-map cosine scores (see the class docs).

        Shape:
            - src_feats, trg_feats: lists of ``(B, C_j, h_j, w_j)``
            - kps: ``(B, K, 2)``
            - output: ``(B, K, Ht, Wt)``, ``(Ht, Wt)`` the largest target map size
        """
        size = _finest(trg_feats)
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
            src_feats: The source maps (``ImageFeatures.maps``).
            kps: Normalised source keypoints.
            trg_feats: The target maps.
            chunk: Keypoints per step (default: ``self.chunk``).

        Returns:
            Normalised target keypoints and confidences, as in one step.

        Shape:
            - kps: ``(B, N, 2)``
            - output: kps ``(B, N, 2)``, confidence ``(B, N)``
        """
        return self._match_chunks(src_feats, kps, trg_feats, chunk)[0]

    @property
    def mirrors_source(self) -> bool:
        """Whether sources must be encoded with ``mirrored=True``: with pose alignment."""
        return self.pose_alignment

    def align_pose(self, src: ImageFeatures, trg: ImageFeatures) -> tuple[list[Tensor], Tensor]:
        """Per pair, the source maps of the pose (as is or mirrored) that agrees better.

        Without ``pose_alignment`` the maps are returned as they are. With it,
        the mirrored maps (``src.mirrored``, from ``encode(..., mirrored=True)``)
        and the maps as they are are each scored by
        :func:`~corrkit.ops.mutual_nn_agreement` with the target on the finest
        grid; a tie keeps the source as is. With several maps, each is
        L2-normalised and resized to the finest grid and they are concatenated,
        so that the cosine of the concatenation is the mean of the per-map
        cosines (the matcher's similarity, unclamped). Memory is bounded by the
        score's chunks (``self.chunk`` cells).

        Args:
            src: Encoded sources.
            trg: Encoded targets, as many.

        Returns:
            The chosen source maps (the mirrored pairs' maps mirrored, so read
            them at mirrored points, :func:`mirror_points`) and which pairs were
            mirrored, ``(B,)`` bool; also stored in :attr:`last_flipped`.

        Raises:
            ValueError: With pose alignment, if the sources were encoded without
                their mirrored maps.
        """
        src_maps = list(src.maps)
        flipped = torch.zeros(len(src), dtype=torch.bool, device=src_maps[0].device)
        if self.pose_alignment:
            if src.mirrored is None:
                raise ValueError(f'{type(self).__name__} aligns the pose: encode the sources '
                                 f'with mirrored=True (see mirrors_source)')
            target = _agreement_features(trg.maps)
            plain = mutual_nn_agreement(_agreement_features(src_maps), target, chunk=self.chunk)
            other = mutual_nn_agreement(_agreement_features(src.mirrored), target,
                                        chunk=self.chunk)
            flipped = other > plain
            src_maps = [torch.where(flipped[:, None, None, None], m, s)
                        for s, m in zip(src_maps, src.mirrored)]
        self.last_flipped = flipped
        return src_maps, flipped

    def dense_flow(self, src: ImageFeatures, trg: ImageFeatures, grid: Sequence[int] | None = None,
                   chunk: int | None = None) -> Tensor:
        """The flow of a grid of source points, matched in chunks of keypoints.

        Args:
            src: Encoded sources (with their mirrored maps under pose alignment).
            trg: Encoded targets, as many.
            grid: ``(Hf, Wf)`` of the source points (default: the finest source map).
            chunk: Points matched at once (default: ``self.chunk``); memory is
                ``B · chunk · Ht · Wt`` scores.

        Returns:
            Source-to-target flow in normalised target coordinates
            (``target = source_grid + flow``), as ``CorrelationMatcher``'s.

        Shape:
            - output: ``(B, 2, Hf, Wf)``
        """
        check_same_batch(src, trg)
        src_maps, flipped = self.align_pose(src, trg)
        grid = tuple(grid or _finest(src_maps))
        kps, _ = points_and_grid(src, None, grid, True)
        pred, _ = self._match_chunks(src_maps, mirror_points(kps, flipped), trg.maps, chunk)
        return _grid_flow(pred.kps, grid)

    def match_points(self, src: ImageFeatures, points: Tensor | None, trg: ImageFeatures, *,
                     maps: bool = False, flow: bool = False, grid: bool = False
                     ) -> PointMatches:
        """Match source points: each point's similarity with the target, read by the head.

        The points and the grid (when asked for, or for the flow) are matched in
        one chunked pass.

        Args:
            src: Encoded sources (with their mirrored maps under pose alignment).
            points: ``(B, N, 2)`` source points, pixels of the source images;
                ``None`` matches every cell of the finest source map (the flow's grid).
            trg: Encoded targets, as many.
            maps: Also return each point's similarity over the finest target grid,
                clamped at zero, ``(B, N, Ht, Wt)``.
            flow: Also return the flow of :meth:`dense_flow` (the grid's matches).
            grid: Also match every cell of the flow's grid, after the points.

        Returns:
            Points and matches in pixels of their images, the head's confidences,
            and which pairs were mirrored with pose alignment.
        """
        check_same_batch(src, trg)
        src_maps, flipped = self.align_pose(src, trg)
        grid_size = _finest(src_maps)
        kps, src_kps = points_and_grid(src, points, grid_size, grid or flow)
        pred, sims = self._match_chunks(src_maps, mirror_points(kps, flipped), trg.maps,
                                        keep_maps=maps)
        cells = grid_size[0] * grid_size[1]
        grid_flow = _grid_flow(pred.kps[:, -cells:], grid_size) if flow else None
        rows = slice(None) if points is None or grid else slice(0, points.shape[1])
        return PointMatches(src_kps[:, rows], trg.from_normalized(pred.kps[:, rows]),
                            pred.confidence[:, rows], None if sims is None else sims[:, rows],
                            grid_flow, flipped if self.pose_alignment else None)

    def timed_stages(self, src: ImageFeatures, points: Tensor, trg: ImageFeatures
                     ) -> dict[str, Callable[[], object]]:
        """``similarity`` and ``head`` for ``points``, and the ``dense flow`` (every cell of
        the finest source grid matched, in chunks, what ``tensor`` mode returns)."""
        kps = src.to_normalized(points)
        similarity = self.similarity(src.maps, kps, trg.maps)
        return {
            'similarity': lambda: self.similarity(src.maps, kps, trg.maps),
            'head': lambda: self.predict_keypoints(similarity),
            'dense flow': lambda: self.dense_flow(src, trg),
        }

    def _match_chunks(self, src_maps: Sequence[Tensor], kps: Tensor, trg_maps: Sequence[Tensor],
                      chunk: int | None = None, keep_maps: bool = False
                      ) -> tuple[KeypointPrediction, Tensor | None]:
        """:meth:`match_keypoints`, with each chunk's similarity clamped at zero if asked for."""
        preds, sims = [], []
        for part in kps.split(chunk or self.chunk, dim=1):
            similarity = self.similarity(src_maps, part, trg_maps)
            preds.append(self.predict_keypoints(similarity))
            if keep_maps:
                sims.append(similarity.clamp(min=0))
        pred = KeypointPrediction(torch.cat([p.kps for p in preds], 1),
                                  torch.cat([p.confidence for p in preds], 1))
        return pred, torch.cat(sims, 1) if keep_maps else None

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
        if mode != 'tensor':
            check_mode(mode, data_samples)
        src, trg = self.encode_pairs(inputs, mirrored=self.pose_alignment and mode != 'loss')
        if mode == 'tensor':
            return self.dense_flow(src, trg)
        # pixels in full precision whatever autocast made of the maps
        dtype = torch.promote_types(src.maps[0].dtype, torch.float32)
        kps, trg_kps, valid = pad_keypoints(data_samples, inputs.device, dtype,
                                            need_targets=mode == 'loss')
        if mode == 'loss':
            size = inputs.shape[-2:]
            similarity = self.similarity(src.maps, pixel_to_normalized(kps, size), trg.maps)
            pred = self.predict_keypoints(similarity)
            trg_kps = pixel_to_normalized(trg_kps, size)
            if isinstance(self.loss_fn, SimilarityLoss):
                return {'loss_kps': self.loss_fn(similarity, pred, trg_kps, valid)}
            return {'loss_kps': self.loss_fn(pred.kps, trg_kps, valid)}
        out = self.match_points(src, kps, trg)
        for i, sample in enumerate(data_samples):
            k = len(sample.src_kps)
            sample.pred_trg_kps = out.trg_kps[i, :k]
            sample.pred_confidence = out.confidence[i, :k]
            if self.pose_alignment:
                sample.pred_flipped = out.flipped[i]
        return data_samples


def _finest(maps: Sequence[Tensor]) -> tuple[int, int]:
    """``(h, w)`` of the map with the most cells."""
    return max((tuple(m.shape[-2:]) for m in maps), key=lambda hw: hw[0] * hw[1])


def _grid_flow(kps: Tensor, grid: Sequence[int]) -> Tensor:
    """The flow of a grid's cells from their predicted normalised targets ``(B, h·w, 2)``."""
    return target_to_flow(rearrange(kps, 'b (h w) xy -> b xy h w', h=grid[0], w=grid[1]))


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
    size = _finest(feats)
    maps = [F.normalize(resize_features(F.normalize(f, dim=1, eps=1e-5), size)
                        if tuple(f.shape[-2:]) != size else f, dim=1, eps=1e-5) for f in feats]
    return torch.cat(maps, 1)
