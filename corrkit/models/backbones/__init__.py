"""Backbones (registry ``BACKBONES``): images → lists of feature maps."""
from .timm_hypercolumn import TimmHypercolumnBackbone
from .torchvision_hypercolumn import TorchvisionHypercolumnBackbone

__all__ = ['TimmHypercolumnBackbone', 'TorchvisionHypercolumnBackbone']
