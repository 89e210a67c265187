"""Backbones (registry ``BACKBONES``): images → lists of feature maps."""
from .timm_hypercolumn import TimmHypercolumnBackbone
from .timm_vit_hypercolumn import TimmViTHypercolumnBackbone
from .random_weights import local_weights_options, random_weights_options
from .torchvision_hypercolumn import TorchvisionHypercolumnBackbone

__all__ = ['TimmHypercolumnBackbone', 'TimmViTHypercolumnBackbone',
           'TorchvisionHypercolumnBackbone', 'local_weights_options',
           'random_weights_options']
