"""The embedded mini dataset: SPair-71k format, made from photos shipped in packages."""
from .generator import DEFAULT_VIEWS, make_mini_dataset

__all__ = ['DEFAULT_VIEWS', 'make_mini_dataset']
