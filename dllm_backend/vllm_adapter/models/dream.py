"""Dream / DiffuCoder (`DreamModel`) as a vLLM model: exactly vLLM's Qwen2 network.

Dream's weights, names and layer math are Qwen2's (q/k/v biases, no o_proj bias, RMSNorm,
untied head unless `tie_word_embeddings`), so vLLM's `Qwen2ForCausalLM` modules and weight
loader serve the real checkpoint as it is. Dream's logits are raw: token i is read from
position i - 1 (the shift is the decoding path's business, as in the reference generator).
Attention stays vLLM's paged `Attention` (the config never sets `is_causal=False`, which
would make Qwen2 build cache-less encoder attention); the executor makes it bidirectional.
"""
from __future__ import annotations

from vllm.model_executor.models.qwen2 import Qwen2ForCausalLM


class DreamModel(Qwen2ForCausalLM):
    pass
