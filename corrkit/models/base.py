"""The contracts of corrkit: the first file a newcomer reads.

A matcher is a pipeline of four roles, each an abstract base class here::

    images (B, 2, 3, H, W) --Backbone--> per-image feature lists
        --CorrelationBuilder--> corr (B, L, Hs, Ws, Ht, Wt)
        --Refiner--> refined (B, L', Hs, Ws, Ht, Wt)
        --FlowHead--> flow (B, 2, Hf, Wf) + match probabilities

:class:`CorrelationMatcher` is the template that calls them in that order,
checks every output against its role's contract (naming the offending class
when one breaks it), transfers keypoints and computes the loss. Components
never call each other. Sizes that can be derived (channels, number of
correlation layers) are injected by the matcher; a config value that
contradicts the derived one raises :class:`ConfigConflictError`.

Each role lists in ``declared_attributes`` what a subclass must set in
``__init__`` (``out_channels``, ``strides``, ``upsample_factor``); a component
that forgets one fails when it is built, with a
:class:`~corrkit.errors.ContractError` naming its class and the attribute
(:class:`~corrkit.layers.DeclaredAttributesMeta`). :mod:`corrkit.testing` checks
a built component against its role's whole contract.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Mapping, NamedTuple, Sequence

from torch import Tensor, nn

from ..errors import ConfigConflictError
from ..layers.base import Attention, DeclaredAttributesMeta
from ..registry import constructor_parameters
from .features import ImageFeatures, ImageFrame, PointMatches


class Backbone(nn.Module, metaclass=DeclaredAttributesMeta):
    """Extracts a list of feature maps from a batch of images.

    Subclasses set ``out_channels`` and ``strides`` (one entry per returned map)
    in ``__init__``. The built-in backbones share timm's vocabulary: ``pretrained``
    (``False``, ``True`` or the path of a weights file) and ``taps`` (what to tap:
    stage numbers, block indices or graph-node names, whichever the model has).

    Shape:
        - input: ``(N, 3, H, W)``, normalised images
        - output: list of ``(N, C_i, ceil(H / s_i), ceil(W / s_i))`` with
          ``C_i = out_channels[i]`` and ``s_i = strides[i]`` (a backbone whose
          maps are sized differently overrides :meth:`feature_sizes`)
    """

    declared_attributes: ClassVar[tuple[str, ...]] = ('out_channels', 'strides')
    out_channels: list[int]
    strides: list[int]

    @abstractmethod
    def forward(self, images: Tensor) -> list[Tensor]:
        """Return one feature map per entry of ``out_channels``."""

    def feature_sizes(self, height: int, width: int) -> list[tuple[int, int]]:
        """The ``(h, w)`` of each returned map for an input of ``height`` × ``width``."""
        return [(math.ceil(height / s), math.ceil(width / s)) for s in self.strides]

    def feature_modules(self) -> list[str]:
        """The module (or graph node) of the wrapped model each map is tapped from.

        The default numbers the maps (``'map0'``, ``'map1'``, ...); backbones that
        know their modules' names override it.
        """
        return [f'map{i}' for i in range(len(self.out_channels))]

    @property
    def feature_info(self) -> list[dict[str, Any]]:
        """One dict per returned map with timm's keys ``num_chs``, ``reduction`` and ``module``.

        Derived from ``out_channels``, ``strides`` and :meth:`feature_modules`, so
        code written against timm's ``model.feature_info`` reads a corrkit backbone.
        A backbone that wraps a timm model may also assign its own list (one
        dict per returned map); it is then returned as assigned.
        """
        assigned = self.__dict__.get('_feature_info')
        if assigned is not None:
            return [dict(info) for info in assigned]
        return [dict(num_chs=c, reduction=s, module=m)
                for c, s, m in zip(self.out_channels, self.strides, self.feature_modules())]

    @feature_info.setter
    def feature_info(self, value: Sequence[Mapping[str, Any]]) -> None:
        self.__dict__['_feature_info'] = [dict(info) for info in value]

    def prepare_inference(self) -> None:
        """Optional: make inference faster without changing its results beyond float
        rounding (the ResNet and torchvision backbones fold BatchNorm into their
        convolutions). Training mode and ``.to()`` undo it. Default: nothing."""

    def bare_network(self) -> nn.Module:
        """The plain network this backbone runs, without what it adds: its forward's
        convolutions and attention on the same images, no maps kept, nothing folded.

        ``tools/benchmark.py`` times it (in each memory layout, the fastest kept) as
        the reference a matcher's forward is compared with. The default is the
        backbone itself; a backbone that taps a network overrides it.
        """
        return self

    @classmethod
    def random_weights_options(cls, cfg: Mapping[str, Any]) -> dict[str, Any]:
        """The config keys (and values) that build this backbone without fetching weights.

        Tools that measure what does not depend on weights (speed, memory, shapes)
        and tests that build every config offline apply them. The default switches
        off ``pretrained`` when the constructor takes it; a backbone with other
        weight options overrides this.

        Args:
            cfg: The backbone's config (``type`` and its keys).

        Returns:
            Keys of the backbone config and their values, e.g. ``{'pretrained': False}``.
        """
        return {'pretrained': False} if 'pretrained' in constructor_parameters(cls) else {}

    @classmethod
    def local_weights_options(cls, cfg: Mapping[str, Any], path: str) -> dict[str, Any]:
        """The config keys (and values) that load this backbone's weights from a local file.

        ``init_matcher(name, checkpoint='auto')`` applies them to the file it
        fetched and checked. The default sets ``pretrained`` to the path; a
        backbone with other weight options overrides this.

        Args:
            cfg: The backbone's config (``type`` and its keys).
            path: The weights file.

        Returns:
            Keys of the backbone config and their values.

        Raises:
            ValueError: If the backbone takes no local weights file.
        """
        if 'pretrained' not in constructor_parameters(cls):
            raise ValueError(f'{cls.__name__} takes no weights file (no pretrained argument); '
                             f'override Backbone.local_weights_options')
        return {'pretrained': path}


class CorrelationBuilder(nn.Module, metaclass=DeclaredAttributesMeta):
    """Builds a multi-channel 4D correlation from two lists of feature maps.

    ``in_channels`` (the backbone's ``out_channels``) is injected by the matcher;
    subclasses set ``out_channels`` (the number ``L`` of correlation channels).

    Shape:
        - src_feats: list of ``(B, C_i, Hs_i, Ws_i)``
        - trg_feats: list of ``(B, C_i, Ht_i, Wt_i)``
        - output: ``(B, L, Hs, Ws, Ht, Wt)``, source-major:
          ``corr[b, l, ys, xs, yt, xt]``
    """

    declared_attributes: ClassVar[tuple[str, ...]] = ('out_channels',)
    out_channels: int

    @abstractmethod
    def forward(self, src_feats: Sequence[Tensor], trg_feats: Sequence[Tensor]) -> Tensor:
        """Return the correlation of every source with every target position."""


class Refiner(nn.Module, metaclass=DeclaredAttributesMeta):
    """Refines a 4D correlation (match-to-match reasoning).

    ``in_channels`` (the correlation's ``L``) is injected by the matcher;
    subclasses set ``out_channels`` (``L'``, usually 1).

    Shape:
        - input: ``(B, L, Hs, Ws, Ht, Wt)``
        - output: ``(B, L', Hs, Ws, Ht, Wt)``
    """

    declared_attributes: ClassVar[tuple[str, ...]] = ('out_channels',)
    in_channels: int
    out_channels: int

    @abstractmethod
    def forward(self, corr: Tensor) -> Tensor:
        """Return the refined correlation on the same 4D grid."""

    def attention_layers(self) -> list[Attention]:
        """The refiner's token mixers over matches, in the order they run.

        The nonlocality analysis (:func:`~corrkit.analysis.model_nonlocality`)
        measures exactly these layers, so a refiner that returns its
        :class:`~corrkit.layers.Attention` modules here gets it for free. The
        default is an empty list: the refiner has no attention.
        """
        return []

    def convolution_kernels(self) -> list[Tensor]:
        """The weights of the refiner's convolutions over the 4D grid, in the order they run.

        Each is ``(C_out, C_in, *kernel_size)``. The nonlocality analysis measures a
        convolution by the offsets its kernel weighs
        (:func:`~corrkit.analysis.conv_nonlocality`), so a convolutional refiner
        that returns its kernels here is analysed like NC-Net's. The default is an
        empty list: the refiner has no convolutions.
        """
        return []


class FlowPrediction(NamedTuple):
    """What a :class:`FlowHead` returns.

    Attributes:
        flow: ``(B, 2, Hf, Wf)`` source-to-target flow in normalised target
            coordinates (``target = source_grid + flow``).
        probs: ``(B, Hf, Wf, Ht', Wt')`` match probabilities of every source cell
            over target cells (summing to one over the last two dimensions).
    """

    flow: Tensor
    probs: Tensor


class FlowHead(nn.Module, metaclass=DeclaredAttributesMeta):
    """Turns a refined correlation into a dense flow and match probabilities.

    ``in_channels`` (the refiner's ``L'``) is injected by the matcher;
    subclasses set ``upsample_factor`` (``Hf = upsample_factor * Hs``).

    Shape:
        - input: ``(B, L', Hs, Ws, Ht, Wt)``
        - output: :class:`FlowPrediction` with flow ``(B, 2, Hf, Wf)`` and
          probs ``(B, Hf, Wf, f * Ht, f * Wt)``, ``f = upsample_factor``
    """

    declared_attributes: ClassVar[tuple[str, ...]] = ('upsample_factor',)
    upsample_factor: int

    @abstractmethod
    def forward(self, corr: Tensor) -> FlowPrediction:
        """Return the flow of every source cell and its match probabilities."""


class Neck(nn.Module, metaclass=DeclaredAttributesMeta):
    """Adapts a backbone's feature maps before matching: an adapter, an aggregation, an upsampling.

    ``in_channels`` and ``in_strides`` (the backbone's ``out_channels`` and
    ``strides``) are injected by the matcher when the constructor takes them;
    subclasses set ``out_channels`` and ``strides`` (one entry per returned map,
    strides in input pixels, so an upsampling by 2 halves them).

    Shape:
        - input: list of ``(N, C_i, h_i, w_i)``, one per backbone map
        - output: list of ``(N, C'_j, h'_j, w'_j)`` with ``C'_j = out_channels[j]``
          and ``(h'_j, w'_j)`` from :meth:`output_sizes`
    """

    declared_attributes: ClassVar[tuple[str, ...]] = ('out_channels', 'strides')
    out_channels: list[int]
    strides: list[int]

    @abstractmethod
    def forward(self, feats: Sequence[Tensor]) -> list[Tensor]:
        """Return one map per entry of ``out_channels``."""

    def output_sizes(self, in_sizes: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
        """The ``(h, w)`` of each returned map, given the sizes of the input maps.

        The default keeps the grids: one output map per input map, of the same
        size. A neck that merges or resamples maps overrides it.

        Raises:
            NotImplementedError: If the neck returns another number of maps and
                does not override this method.
        """
        if len(self.out_channels) != len(in_sizes):
            raise NotImplementedError(
                f'{type(self).__name__} returns {len(self.out_channels)} maps from '
                f'{len(in_sizes)}; it must override Neck.output_sizes')
        return [tuple(size) for size in in_sizes]


class KeypointPrediction(NamedTuple):
    """What a :class:`KeypointHead` returns.

    Attributes:
        kps: ``(B, K, 2)`` predicted target keypoints ``(x, y)`` in normalised
            target coordinates (``[-1, 1]``, ``align_corners=True``).
        confidence: ``(B, K)`` how sure the head is of each prediction, in
            ``[0, 1]``, higher is surer (each head documents its definition).
    """

    kps: Tensor
    confidence: Tensor


class KeypointHead(nn.Module, metaclass=DeclaredAttributesMeta):
    """Turns each source keypoint's similarity over target locations into a target keypoint.

    A keypoint matcher compares the feature of every source keypoint with the
    feature of every target location; the head reads those similarities (cosine
    scores in ``[-1, 1]`` for the shipped matcher) and predicts where each
    keypoint lands. Memory is ``K · Ht · Wt``, never ``Hs · Ws · Ht · Wt``.

    A head whose keypoints do not depend differentiably on the similarity (a
    hard argmax) sets the class attribute ``differentiable = False``; the
    contract check then does not ask for a gradient from ``kps`` to the input,
    and a loss on the keypoints alone cannot train the features through it.

    Shape:
        - input: ``(B, K, Ht, Wt)``
        - output: :class:`KeypointPrediction` with kps ``(B, K, 2)`` and
          confidence ``(B, K)``
    """

    declared_attributes: ClassVar[tuple[str, ...]] = ()
    #: Whether ``kps`` carries a gradient to the similarity.
    differentiable: ClassVar[bool] = True

    @abstractmethod
    def forward(self, similarity: Tensor) -> KeypointPrediction:
        """Return every keypoint's predicted normalised target position and its confidence."""


class SimilarityLoss(nn.Module, metaclass=DeclaredAttributesMeta):
    """A keypoint matcher's loss: reads the similarity maps as well as the head's prediction.

    Losses in ``LOSSES`` come in two kinds, told apart by this base class:
    a ``SimilarityLoss`` is called as ``loss(similarity, pred, target, valid)``;
    any other loss (e.g. :class:`~corrkit.models.losses.KeypointL2Loss`) as
    ``loss(pred_kps, target, valid)`` on keypoints alone.
    :func:`corrkit.testing.check_loss` checks each against its kind's contract.

    Shape:
        - similarity: ``(B, K, Ht, Wt)``, each source keypoint against every
          target cell
        - pred: :class:`KeypointPrediction` (kps ``(B, K, 2)``) or ``None``
        - target: ``(B, K, 2)`` true target keypoints, normalised ``(x, y)``
        - valid: ``(B, K)`` bool; masked keypoints contribute nothing
        - output: scalar
    """

    declared_attributes: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def forward(self, similarity: Tensor, pred: KeypointPrediction | None, target: Tensor,
                valid: Tensor) -> Tensor:
        """Return the loss, finite (and connected to the graph) without any valid keypoint."""


class Matcher(ABC):
    """The interface every matcher implements: encode images once, match points between them.

    Matching has two stages. :meth:`encode` runs the backbone (and neck) on a
    batch of images and keeps each image's frame; nothing in its result depends
    on the image it will be matched with, so a job over ``N`` images encodes
    each once and matches any pairs of them. :meth:`match_points` and
    :meth:`dense_flow` match two encoded batches pair by pair (image ``i`` of
    the source batch with image ``i`` of the target batch). Points go in and
    come out in the pixels of the images as given. ``match_pair``, the
    ``corrkit`` commands, the viewer, batch matching, the analysis and the
    benchmark call these stages; the matchers' ``tensor``, ``loss`` and
    ``predict`` modes do too. :func:`corrkit.testing.check_matcher` checks an
    implementation against this contract.

    Attributes:
        input_size: ``(H, W)`` the model matches images at (images are resized
            to it before :meth:`encode`).
    """

    input_size: tuple[int, int]

    def prepare_inference(self) -> None:
        """Optional: get ready for inference (:func:`~corrkit.apis.init_matcher` calls it
        after ``eval()``); ``FeatureMatcher`` asks its backbone to
        (:meth:`Backbone.prepare_inference`). Default: nothing."""

    @property
    def mirrors_source(self) -> bool:
        """Whether :meth:`match_points` wants sources encoded with ``mirrored=True``
        (test-time pose alignment); targets never need it. Default: ``False``."""
        return False

    @abstractmethod
    def encode(self, images: Tensor, frames: Sequence[ImageFrame] | None = None,
               mirrored: bool = False) -> ImageFeatures:
        """Stage 1: the backbone (and neck) on a batch of images, each with its frame.

        Args:
            images: Normalised images at ``input_size``.
            frames: One frame per image: where the image as given sits in
                ``images`` (default: the images are the input, unresized).
            mirrored: Also encode the images mirrored left to right (one more
                backbone call), for a matcher that :attr:`mirrors_source`.

        Returns:
            The images' maps and frames.

        Shape:
            - images: ``(N, 3, H, W)``
        """

    @abstractmethod
    def match_points(self, src: ImageFeatures, points: Tensor | None, trg: ImageFeatures, *,
                     maps: bool = False, flow: bool = False, grid: bool = False
                     ) -> PointMatches:
        """Stage 2: match source points to the targets, pair by pair.

        Args:
            src: Encoded source images (``B``).
            points: ``(B, N, 2)`` source points ``(x, y)``, pixels of the source
                images; ``None`` matches the cells of the flow's grid.
            trg: Encoded target images (``B``).
            maps: Also return each point's scores over the target (for viewers).
            flow: Also return the dense flow of :meth:`dense_flow`.
            grid: Also match every cell of the flow's grid, after the points
                (its rows come last, in row-major order); implied by ``points=None``.

        Returns:
            The points, their matches in pixels of the targets and a confidence
            per point, with the maps and flow when asked for.
        """

    def timed_stages(self, src: ImageFeatures, points: Tensor, trg: ImageFeatures
                     ) -> dict[str, Callable[[], object]]:
        """The stages after :meth:`encode`, one call each, fed the previous stage's output.

        What the benchmark times (:func:`~corrkit.analysis.benchmark.stage_calls`).
        The default is one stage, ``match points``; a matcher with stages worth
        telling apart returns them in the order they run.

        Args:
            src: Encoded sources.
            points: ``(B, N, 2)`` source points, pixels of the sources.
            trg: Encoded targets.
        """
        return {'match points': lambda: self.match_points(src, points, trg)}

    @abstractmethod
    def dense_flow(self, src: ImageFeatures, trg: ImageFeatures) -> Tensor:
        """Stage 2, dense: the source-to-target flow ``(B, 2, Hf, Wf)`` of a grid of
        source cells, normalised target coordinates (``target = source_grid + flow``)."""


class MatchOutputs(NamedTuple):
    """Every intermediate of a correlation matcher on a pair (``CorrelationMatcher.correspond``).

    Attributes:
        corr: ``(B, L, Hs, Ws, Ht, Wt)`` raw multi-channel correlation.
        refined: ``(B, L', Hs, Ws, Ht, Wt)`` refined correlation.
        flow: ``(B, 2, Hf, Wf)`` normalised source-to-target flow.
        probs: ``(B, Hf, Wf, Ht', Wt')`` match probabilities.
    """

    corr: Tensor
    refined: Tensor
    flow: Tensor
    probs: Tensor


__all__ = ['Backbone', 'CorrelationBuilder', 'Refiner', 'FlowHead', 'FlowPrediction', 'Neck',
           'KeypointHead', 'KeypointPrediction', 'SimilarityLoss', 'ConfigConflictError',
           'ImageFeatures', 'ImageFrame', 'MatchOutputs', 'Matcher', 'PointMatches']
