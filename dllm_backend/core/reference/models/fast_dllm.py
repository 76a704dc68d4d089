"""Reference network of Fast-dLLM v2 (`Fast_dLLM_QwenForCausalLM`): the Qwen2.5 layout.

q/k/v projections carry biases, o_proj does not, no q/k norm, HF RMSNorm (cast before the
weight). Logits are raw; the generator shifts them. The 1.5B checkpoint ties `lm_head` to
`model.embed_tokens`, the 7B does not (`tie_word_embeddings`).
"""
from __future__ import annotations

from ..layers import GatedMLP, RMSNorm
from ._qwen import QwenAttention, QwenCausalLM, QwenDecoderLayer


def _layer(config, index: int) -> QwenDecoderLayer:
    attn = QwenAttention(config, qkv_bias=True, o_bias=False, qk_norm=False, norm_cls=RMSNorm)
    mlp = GatedMLP(config.hidden_size, config.intermediate_size)
    return QwenDecoderLayer(config, attn, mlp, RMSNorm)


class Fast_dLLM_QwenForCausalLM(QwenCausalLM):  # noqa: N801 - the checkpoint's own class name
    def __init__(self, config) -> None:
        super().__init__(config, _layer, RMSNorm)
