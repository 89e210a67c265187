"""Reusable ``nn`` blocks that components are made of."""
from .absolute_position import AbsolutePosition4D
from .additive_attention import AdditiveAttention
from .conv4d import Conv4d
from .linformer_attention import LinformerAttention
from .mlp import Mlp
from .performer_attention import PerformerAttention
from .qkv_attention import QKVAttention
from .rotary import Rotary4D
from .softmax_attention import AttentionMemoryError, SoftmaxAttention
from .transformer_block import PreNormBlock

__all__ = ['AbsolutePosition4D', 'AdditiveAttention', 'AttentionMemoryError', 'Conv4d',
           'LinformerAttention', 'Mlp', 'PerformerAttention', 'PreNormBlock', 'QKVAttention',
           'Rotary4D', 'SoftmaxAttention']
