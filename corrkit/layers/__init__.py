"""Reusable ``nn`` blocks that components are made of.

:class:`Attention` is the token-mixer contract every registered attention implements.
"""
from .absolute_position import AbsolutePosition4D
from .additive_attention import AdditiveAttention
from .base import PAIRWISE_SCORES, Attention, DeclaredAttributesMeta
from .conv4d import Conv4d
from .linformer_attention import LinformerAttention
from .mlp import Mlp
from .performer_attention import PerformerAttention
from .qkv_attention import QKVAttention
from .rotary import Rotary4D
from .softmax_attention import AttentionMemoryError, SoftmaxAttention
from .transformer_block import PreNormBlock

__all__ = ['AbsolutePosition4D', 'AdditiveAttention', 'Attention', 'AttentionMemoryError',
           'Conv4d', 'DeclaredAttributesMeta', 'LinformerAttention', 'Mlp', 'PAIRWISE_SCORES',
           'PerformerAttention', 'PreNormBlock', 'QKVAttention', 'Rotary4D', 'SoftmaxAttention']
