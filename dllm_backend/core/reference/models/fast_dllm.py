"""Reference network of Fast-dLLM v2 (`Fast_dLLM_QwenForCausalLM`): the Qwen2.5 layout.

The same tree and numerics as Dream (`dream.qwen2_layer`), block-causal by the mask the
generator passes. Logits are raw; the generator shifts them. The 1.5B checkpoint ties
`lm_head` to `model.embed_tokens`, the 7B does not (`tie_word_embeddings`).
"""
from __future__ import annotations

from ..layers import RMSNorm
from ._qwen import QwenCausalLM
from .dream import qwen2_layer


class Fast_dLLM_QwenForCausalLM(QwenCausalLM):  # noqa: N801 - the checkpoint's own class name
    def __init__(self, config) -> None:
        super().__init__(config, qwen2_layer, RMSNorm)
