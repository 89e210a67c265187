"""corrkit: a registry-based PyTorch framework for semantic correspondence."""

__version__ = '0.1.0'
