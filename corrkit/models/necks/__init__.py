"""Necks (registry ``NECKS``): backbone maps → adapted maps (adapters, aggregation, upsampling)."""
from .aggregation import AggregationNeck
from .identity import IdentityNeck
from .upsample import UpsampleNeck

__all__ = ['AggregationNeck', 'IdentityNeck', 'UpsampleNeck']
