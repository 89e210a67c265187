"""The per-pair data sample that travels with a pair of images.

Keypoints are ``(x, y)`` pixels in the frame the model sees (the resized
images), with a boolean validity mask instead of sentinel values.
"""
from __future__ import annotations

import torch
from mmengine.structures import BaseDataElement
from torch import Tensor


class PairDataSample(BaseDataElement):
    """Annotations and predictions of one source/target image pair.

    Data fields (tensors, moved with ``.to(device)``):

    - ``src_kps`` / ``trg_kps``: ``(K, 2)`` keypoints in pixels of the model's frame.
    - ``kps_valid``: ``(K,)`` bool, true where a keypoint is annotated in both images.
    - ``pred_trg_kps``: ``(K, 2)`` predicted target keypoints (set by ``predict``).
    - ``pred_flow``: ``(2, Hf, Wf)`` predicted normalised flow (set by ``predict``).

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
