"""Backbones (registry ``BACKBONES``): images → lists of feature maps."""
from .timm_hypercolumn import TimmHypercolumnBackbone
from .timm_vit_hypercolumn import TimmViTHypercolumnBackbone
from .torchvision_hypercolumn import TorchvisionHypercolumnBackbone

__all__ = ['TimmHypercolumnBackbone', 'TimmViTHypercolumnBackbone',
           'TorchvisionHypercolumnBackbone']
