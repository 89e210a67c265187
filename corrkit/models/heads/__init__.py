"""Flow heads (registry ``FLOW_HEADS``): refined correlation → flow + probabilities."""
from .kernel_soft_argmax import KernelSoftArgmaxHead
from .soft_argmax import SoftArgmaxHead

__all__ = ['KernelSoftArgmaxHead', 'SoftArgmaxHead']
