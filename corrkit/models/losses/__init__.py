"""Losses (registry ``LOSSES``)."""
from .keypoint_cross_entropy import KeypointCrossEntropyLoss
from .keypoint_l2 import KeypointL2Loss

__all__ = ['KeypointCrossEntropyLoss', 'KeypointL2Loss']
