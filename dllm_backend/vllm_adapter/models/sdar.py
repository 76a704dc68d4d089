"""SDAR / TraDo (`SDARForCausalLM`) as a vLLM model: exactly vLLM's Qwen3 network.

SDAR's weights, names and layer math are Qwen3's (q/k RMSNorm, no q/k/v bias), so vLLM's
`Qwen3ForCausalLM` modules and its weight loader serve the real checkpoint names as they
are. What makes it a dLLM lives elsewhere: attention is made non-causal per scheduled
block by the adapter's model runner (block-causal overall, because a query only ever
covers one block), and decoding is the adapter's scheduler + core policy.
"""
from __future__ import annotations

from vllm.model_executor.models.qwen3 import Qwen3ForCausalLM


class SDARForCausalLM(Qwen3ForCausalLM):
    pass
