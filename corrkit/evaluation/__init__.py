"""Evaluation: functional PCK, the PCK reference sizes and the mmengine ``PCKMetric``."""
from .functional import THRESHOLD_KINDS, pck, pck_reference_sizes
from .pck_metric import PCKMetric

__all__ = ['PCKMetric', 'THRESHOLD_KINDS', 'pck', 'pck_reference_sizes']
