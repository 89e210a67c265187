"""Evaluation: functional PCK, the PCK reference sizes and the mmengine ``PCKMetric``."""
from .functional import THRESHOLD_KINDS, pck, pck_reference_sizes
from .pck_metric import PCKMetric
from .report_hook import PCKReportHook

__all__ = ['PCKMetric', 'PCKReportHook', 'THRESHOLD_KINDS', 'pck', 'pck_reference_sizes']
