"""Evaluation: functional PCK (and, later, the mmengine metric)."""
from .functional import pck

__all__ = ['pck']
