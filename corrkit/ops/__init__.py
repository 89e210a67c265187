"""The functional core: pure tensor functions, no ``nn.Module``.

Everything here is batch-first, device- and dtype-agnostic, differentiable
where it makes sense, and documented with its tensor shapes.
"""
from .coords import (flow_to_target, normalized_grid, normalized_to_pixel, pixel_to_normalized,
                     rescale_points,
                     target_to_flow)
from .conv4d import conv4d, mutual_nn_filter, swap_source_target
from .correlation import cosine_correlation_4d, rectified_cosine_scores, resize_features
from .fusion import agreement_score, cycle_score, fuse_candidates, weighted_geometric_median
from .interpolate import interpolate_4d
from .keypoint_heads import (argmax_2d, expected_position_2d, soft_argmax_2d,
                            spatial_softmax_2d, window_mask_2d, window_soft_argmax_2d,
                            window_softmax_2d)
from .keypoint_similarity import keypoint_similarity, sample_features
from .pose_alignment import mutual_nn_agreement
from .rotary import apply_rope_4d, grid_positions_4d, rope_4d_angles, rotate_pairs
from .soft_argmax import (expected_target, gaussian_around_argmax, kernel_soft_argmax,
                          kernel_soft_argmax_probabilities, soft_argmax,
                          soft_argmax_probabilities)
from .tps import (ThinPlateSpline, homography_transform, invert_points, tps_fit, tps_jacobian,
                  tps_transform, warp_image)
from .transfer import soft_sample, soft_sampler_weights, transfer_keypoints

__all__ = [
    'agreement_score', 'cycle_score', 'fuse_candidates', 'weighted_geometric_median',
    'argmax_2d', 'expected_position_2d', 'soft_argmax_2d', 'spatial_softmax_2d',
    'window_mask_2d', 'window_soft_argmax_2d', 'window_softmax_2d',
    'apply_rope_4d', 'conv4d', 'cosine_correlation_4d', 'expected_target', 'flow_to_target',
    'gaussian_around_argmax', 'grid_positions_4d', 'homography_transform', 'interpolate_4d',
    'invert_points', 'kernel_soft_argmax', 'kernel_soft_argmax_probabilities',
    'keypoint_similarity',
    'mutual_nn_agreement', 'mutual_nn_filter', 'normalized_grid', 'normalized_to_pixel', 'pixel_to_normalized',
    'rectified_cosine_scores', 'rescale_points', 'resize_features', 'rope_4d_angles', 'rotate_pairs', 'sample_features',
    'soft_argmax',
    'soft_argmax_probabilities', 'soft_sample', 'soft_sampler_weights', 'swap_source_target',
    'target_to_flow', 'ThinPlateSpline', 'tps_fit', 'tps_jacobian', 'tps_transform',
    'transfer_keypoints', 'warp_image',
]
