"""Packing a transformed pair into model inputs and a data sample."""
from __future__ import annotations

import torch
from torch import Tensor

from ...registry import TRANSFORMS
from ...structures import DIFFICULTY_FIELDS, PairDataSample, pck_reference_sizes
from ._pair import BORDER_TOLERANCE, SIDES, image_size, inside_image

#: Annotation fields copied into the data sample's metainfo when present.
META_KEYS = ('pair_id', 'category', 'category_id', 'src_img_path', 'trg_img_path',
             'src_ori_shape', 'trg_ori_shape', 'flip', *DIFFICULTY_FIELDS)


@TRANSFORMS.register_module()
class PackPairInputs:
    """Stack the two images and build the :class:`~corrkit.structures.PairDataSample`.

    A keypoint that the transforms moved off either image (by more than the
    border tolerance) is marked invalid here; it was never clamped. The PCK reference sizes of every kind
    (:func:`~corrkit.structures.pck_reference_sizes`) are computed in the final
    frame, so the metric compares distances and thresholds in the same pixels.

    Returns, in the results dict:
        ``inputs``: ``uint8 (2, 3, H, W)``, source then target.
        ``data_samples``: the pair's data sample, with ``src_kps``, ``trg_kps``,
        ``kps_valid`` and metainfo ``img_shape``, ``pck_ref_sizes``,
        ``src_bbox`` / ``trg_bbox`` (``[x1, y1, x2, y2]`` or ``None``), and the
        annotation fields in :data:`META_KEYS` that the dataset provides. When
        the pipeline can map the frame back to the original target image (no
        flip), also ``trg_frame`` (``(ax, bx, ay, by)``: ``x_frame = ax x + bx``),
        ``trg_kps_original`` and ``pck_ref_sizes_original`` (reference sizes in
        the original target image), for ``PCKMetric(frame='original')``.

    Raises:
        ValueError: If the two images differ in size (the pipeline needs a
            ``PairResize``).
    """

    def __call__(self, results: dict) -> dict:
        shapes = [image_size(results, side) for side in SIDES]
        if shapes[0] != shapes[1]:
            raise ValueError(f'the two images of pair {results.get("pair_id")!r} have sizes '
                             f'{shapes[0]} and {shapes[1]}; add PairResize to the pipeline so '
                             f'they can be stacked')
        height, width = shapes[0]
        kps = {side: results[f'{side}_kps'].as_subclass(Tensor).float() for side in SIDES}
        valid = torch.as_tensor(results['kps_valid'], dtype=torch.bool).clone()
        for side in SIDES:
            valid &= inside_image(kps[side], height, width, BORDER_TOLERANCE)
        boxes = {side: _box_list(results.get(f'{side}_bbox')) for side in SIDES}
        sample = PairDataSample(src_kps=kps['src'], trg_kps=kps['trg'], kps_valid=valid)
        meta = {key: results[key] for key in META_KEYS if key in results}
        meta.update(img_shape=(height, width), src_bbox=boxes['src'], trg_bbox=boxes['trg'],
                    pck_ref_sizes=pck_reference_sizes((height, width), kps['trg'], valid,
                                                      results.get('trg_bbox')))
        frame = results.get('trg_frame')
        if frame is not None and results.get('trg_kps_original') is not None:
            # the same pair measured in the original target image (PCKMetric frame='original')
            kps_original = torch.as_tensor(results['trg_kps_original']).float()
            meta.update(trg_frame=tuple(float(v) for v in frame),
                        trg_kps_original=kps_original,
                        pck_ref_sizes_original=pck_reference_sizes(
                            tuple(results['trg_ori_shape']), kps_original, valid,
                            results.get('trg_bbox_original')))
        sample.set_metainfo(meta)
        inputs = torch.stack([results['src_img'].as_subclass(Tensor),
                              results['trg_img'].as_subclass(Tensor)])
        return {'inputs': inputs, 'data_samples': sample}

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'


def _box_list(box: Tensor | None) -> list[float] | None:
    return None if box is None else [float(v) for v in box.reshape(4)]
