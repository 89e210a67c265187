"""Losses (registry ``LOSSES``)."""
from .keypoint_l2 import KeypointL2Loss

__all__ = ['KeypointL2Loss']
