"""Refiners of my own, registered into corrkit's REFINERS when this package is imported."""
from .refiner import MutualMatchRefiner

__all__ = ['MutualMatchRefiner']
