"""Reference network of Dream / DiffuCoder (`DreamModel`): the Qwen2 layout, run bidirectionally.

Module tree (== checkpoint names): model.embed_tokens, model.layers.{i}.{input_layernorm,
self_attn.{q,k,v}_proj (with bias), self_attn.o_proj (no bias), post_attention_layernorm,
mlp.{gate,up,down}_proj}, model.norm, lm_head: exactly Fast-dLLM v2's tree, so both
build on `_qwen`. Logits are raw (unshifted): the generator reads token i from position i - 1.
"""
from __future__ import annotations

from ..layers import GatedMLP, RMSNorm
from ._qwen import QwenAttention, QwenCausalLM, QwenDecoderLayer


def qwen2_layer(config, index: int) -> QwenDecoderLayer:
    """A Qwen2 decoder layer: q/k/v biases hard-coded (no config switch), no o_proj bias, no q/k norm."""
    attn = QwenAttention(config, qkv_bias=True, o_bias=False, qk_norm=False, norm_cls=RMSNorm)
    mlp = GatedMLP(config.hidden_size, config.intermediate_size)
    return QwenDecoderLayer(config, attn, mlp, RMSNorm)


class DreamModel(QwenCausalLM):
    def __init__(self, config) -> None:
        super().__init__(config, qwen2_layer, RMSNorm)
