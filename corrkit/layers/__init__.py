"""Reusable ``nn`` blocks that components are made of."""
from .additive_attention import AdditiveAttention
from .mlp import Mlp
from .rotary import Rotary4D
from .transformer_block import PreNormBlock

__all__ = ['AdditiveAttention', 'Mlp', 'PreNormBlock', 'Rotary4D']
