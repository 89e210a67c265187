"""Example plugin: a refiner that learns how much each correlation layer counts.

Importing this module registers ``LayerWeightedRefiner`` in corrkit's
``REFINERS``; ``configs/plugin_layer_weighted_refiner.py`` swaps it in.
"""
from .layer_weighted import LayerWeightedRefiner

__all__ = ['LayerWeightedRefiner']
