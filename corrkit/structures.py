"""The per-pair data sample that travels with a pair of images, and what its metainfo means.

Keypoints are ``(x, y)`` pixels in the frame the model sees (the resized
images), with a boolean validity mask instead of sentinel values. The PCK
reference sizes and SPair-71k's difficulty annotations are defined here, below
both the datasets that fill them in and the evaluation that reads them.
"""
from __future__ import annotations

import torch
from mmengine.structures import BaseDataElement
from torch import Tensor

__all__ = ['DIFFICULTY_FIELDS', 'DIFFICULTY_GRADES', 'DIFFICULTY_LEVELS', 'REFERENCE_PAD_VALUE',
           'THRESHOLD_KINDS', 'PairDataSample', 'difficulty_grade', 'pck_reference_sizes',
           'swap_difficulty_sides']

#: SPair-71k's difficulty annotations, as a pair's metainfo carries them: each
#: field's annotated values and SPair-71k's names for them. Viewpoint and scale
#: variation are easy / medium / hard; truncation and occlusion say which image
#: is affected: none / source / target / both.
DIFFICULTY_LEVELS: dict[str, dict[int, str]] = {
    'viewpoint_variation': {0: 'easy', 1: 'medium', 2: 'hard'},
    'scale_variation': {0: 'easy', 1: 'medium', 2: 'hard'},
    'truncation': {0: 'none', 1: 'src', 2: 'trg', 3: 'both'},
    'occlusion': {0: 'none', 1: 'src', 2: 'trg', 3: 'both'},
}

#: The names of the difficulty fields, in SPair-71k's order.
DIFFICULTY_FIELDS = tuple(DIFFICULTY_LEVELS)

#: The three grades that TransforMatcher's Figure 7 (and its supplementary)
#: puts every difficulty field on, see :func:`difficulty_grade`.
DIFFICULTY_GRADES = ('easy', 'medium', 'hard')

# Truncation and occlusion are easy when neither image is affected, medium when
# one is and hard when both are.
_GRADE_OF_LEVEL = {'easy': 'easy', 'medium': 'medium', 'hard': 'hard',
                   'none': 'easy', 'src': 'medium', 'trg': 'medium', 'both': 'hard'}

#: Names of the PCK reference sizes, see :func:`pck_reference_sizes`.
THRESHOLD_KINDS = ('img', 'bbox', 'bbox-kp', 'bbox-kp-padded')

#: The sentinel TransforMatcher's reference code pads keypoint arrays with before
#: taking their box (DHPF's code uses -1, CATs' -1 on the source image).
REFERENCE_PAD_VALUE = -2.0


class PairDataSample(BaseDataElement):
    """Annotations and predictions of one source/target image pair.

    Data fields (tensors, moved with ``.to(device)``):

    - ``src_kps`` / ``trg_kps``: ``(K, 2)`` keypoints in pixels of the model's frame.
    - ``kps_valid``: ``(K,)`` bool, true where a keypoint is annotated in both images.
    - ``pred_trg_kps``: ``(K, 2)`` predicted target keypoints (set by ``predict``).
    - ``pred_flow``: ``(2, Hf, Wf)`` predicted normalised flow (set by ``predict``).
    - ``pred_confidence``: ``(K,)`` confidence of each prediction in ``[0, 1]`` (set by
      ``KeypointMatcher``'s ``predict``).

    Meta fields (anything else, e.g. ``category``, ``src_imsize``, ``trg_imsize``,
    ``pck_ref_sizes``) are set with ``set_metainfo``.

    Examples:
        >>> sample = PairDataSample(src_kps=torch.zeros(3, 2), trg_kps=torch.ones(3, 2),
        ...                         kps_valid=torch.tensor([True, True, False]))
        >>> sample.num_valid
        2
    """

    @property
    def src_kps(self) -> Tensor:
        return self._src_kps

    @src_kps.setter
    def src_kps(self, value: Tensor) -> None:
        self.set_field(_as_points(value, 'src_kps'), '_src_kps', dtype=Tensor)

    @property
    def trg_kps(self) -> Tensor:
        return self._trg_kps

    @trg_kps.setter
    def trg_kps(self, value: Tensor) -> None:
        self.set_field(_as_points(value, 'trg_kps'), '_trg_kps', dtype=Tensor)

    @property
    def kps_valid(self) -> Tensor:
        return self._kps_valid

    @kps_valid.setter
    def kps_valid(self, value: Tensor) -> None:
        self.set_field(torch.as_tensor(value, dtype=torch.bool), '_kps_valid', dtype=Tensor)

    @property
    def num_valid(self) -> int:
        """Number of valid keypoints."""
        return int(self.kps_valid.sum())


def _as_points(value: object, name: str) -> Tensor:
    points = torch.as_tensor(value)
    if not points.is_floating_point():
        points = points.float()
    if points.dim() != 2 or points.shape[-1] != 2:
        raise ValueError(f'{name} must have shape (K, 2) as (x, y) pixels, got {tuple(points.shape)}')
    return points


def difficulty_grade(field: str, value: int) -> str:
    """Figure 7's easy / medium / hard for one annotated difficulty value.

    Args:
        field: One of :data:`DIFFICULTY_FIELDS`.
        value: The annotated value (a key of ``DIFFICULTY_LEVELS[field]``).

    Returns:
        One of :data:`DIFFICULTY_GRADES`.

    Raises:
        ValueError: If the field or its value is not one SPair-71k defines.

    Examples:
        >>> difficulty_grade('occlusion', 2), difficulty_grade('scale_variation', 2)
        ('medium', 'hard')
    """
    levels = DIFFICULTY_LEVELS.get(field)
    if levels is None:
        raise ValueError(f'unknown difficulty field {field!r}; expected one of {DIFFICULTY_FIELDS}')
    if int(value) not in levels:
        raise ValueError(f'difficulty field {field!r} has no level {value!r}; expected one of '
                         f'{sorted(levels)}')
    return _GRADE_OF_LEVEL[levels[int(value)]]


def swap_difficulty_sides(field: str, value: int) -> int:
    """The annotation of ``field`` for the same pair with source and target swapped.

    Fields that name an image (truncation, occlusion) swap ``src`` and ``trg``;
    the others describe the pair and stay.

    Raises:
        ValueError: If the field or its value is not one SPair-71k defines.

    Examples:
        >>> swap_difficulty_sides('occlusion', 1), swap_difficulty_sides('occlusion', 3)
        (2, 3)
        >>> swap_difficulty_sides('viewpoint_variation', 1)
        1
    """
    difficulty_grade(field, value)  # validates both
    levels = DIFFICULTY_LEVELS[field]
    name = {'src': 'trg', 'trg': 'src'}.get(levels[int(value)], levels[int(value)])
    return next(v for v, n in levels.items() if n == name)


def pck_reference_sizes(img_shape: tuple[int, int], trg_kps: Tensor, valid: Tensor,
                        trg_bbox: Tensor | None = None) -> dict[str, float]:
    """The PCK reference sizes of one pair, in pixels of the evaluation frame.

    - ``img``: ``max(H, W)`` of the (resized) target image. PF-PASCAL's protocol.
    - ``bbox``: ``max(w, h)`` of the target object box. SPair-71k's protocol.
    - ``bbox-kp``: ``max(w, h)`` of the tight box around the valid target
      keypoints. PF-WILLOW's protocol.
    - ``bbox-kp-padded``: the looser variant that public code of several peers
      reports as PF-WILLOW ``bbox``: their keypoint arrays are padded with a
      sentinel (``-2`` in TransforMatcher's code) before the box is taken, so
      the box always reaches back to ``(-2, -2)``. Kept, under its own name, to
      compare with published numbers.

    The pipeline stores them in each data sample's ``pck_ref_sizes``;
    ``corrkit.evaluation`` re-exports this function.

    Args:
        img_shape: ``(H, W)`` of the target image in the evaluation frame.
        trg_kps: Target keypoints ``(x, y)``.
        valid: Which keypoints are valid.
        trg_bbox: Target object box ``[x1, y1, x2, y2]``, if annotated.

    Returns:
        A dict from kind (:data:`THRESHOLD_KINDS`) to size; ``bbox`` only when a
        box is given, the keypoint kinds only when at least one keypoint is valid.

    Shape:
        - trg_kps: ``(K, 2)``
        - valid: ``(K,)`` bool
        - trg_bbox: ``(4,)``

    Examples:
        >>> kps = torch.tensor([[10.0, 20.0], [50.0, 40.0], [0.0, 0.0]])
        >>> sizes = pck_reference_sizes((240, 200), kps, torch.tensor([True, True, False]),
        ...                             torch.tensor([5.0, 5.0, 105.0, 65.0]))
        >>> {k: round(v, 1) for k, v in sizes.items()}
        {'img': 240.0, 'bbox': 100.0, 'bbox-kp': 40.0, 'bbox-kp-padded': 52.0}
    """
    sizes = {'img': float(max(img_shape))}
    if trg_bbox is not None:
        box = torch.as_tensor(trg_bbox, dtype=torch.float64).reshape(4)
        sizes['bbox'] = float(torch.maximum(box[2] - box[0], box[3] - box[1]))
    valid = torch.as_tensor(valid, dtype=torch.bool)
    points = torch.as_tensor(trg_kps, dtype=torch.float64)[valid]
    if len(points):
        low, high = points.min(0).values, points.max(0).values
        sizes['bbox-kp'] = float((high - low).max())
        sizes['bbox-kp-padded'] = float((high - low.clamp(max=REFERENCE_PAD_VALUE)).max())
    return sizes
