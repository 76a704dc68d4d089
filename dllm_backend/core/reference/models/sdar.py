"""Reference network of SDAR (`SDARForCausalLM`): the Qwen3 layout, run under a caller-given mask.

Qwen3 numerics as in SDAR's modeling code: per-head q/k RMSNorm before RoPE, no q/k/v/o
bias (`attention_bias`), flash-attn's fused RMSNorm (weight applied in float32).
"""
from __future__ import annotations

from ..layers import GatedMLP
from ._common import FusedWeightRMSNorm
from ._qwen import QwenAttention, QwenCausalLM, QwenDecoderLayer


def sdar_attention(config) -> QwenAttention:
    bias = bool(config.attention_bias)
    return QwenAttention(config, qkv_bias=bias, o_bias=bias, qk_norm=True, norm_cls=FusedWeightRMSNorm)


def _layer(config, index: int) -> QwenDecoderLayer:
    mlp = GatedMLP(config.hidden_size, config.intermediate_size)
    return QwenDecoderLayer(config, sdar_attention(config), mlp, FusedWeightRMSNorm)


class SDARForCausalLM(QwenCausalLM):
    def __init__(self, config) -> None:
        super().__init__(config, _layer, FusedWeightRMSNorm)
