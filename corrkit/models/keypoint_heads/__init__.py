"""Keypoint heads (registry ``KEYPOINT_HEADS``): per-keypoint similarity → target keypoint."""
from .nearest_neighbour import NearestNeighbourHead
from .soft_argmax import SoftArgmaxKeypointHead
from .window_soft_argmax import WindowSoftArgmaxHead

__all__ = ['NearestNeighbourHead', 'SoftArgmaxKeypointHead', 'WindowSoftArgmaxHead']
