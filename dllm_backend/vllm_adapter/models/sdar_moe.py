"""SDAR-MoE as a vLLM model: exactly vLLM's Qwen3-MoE network."""
from __future__ import annotations

from vllm.model_executor.models.qwen3_moe import Qwen3MoeForCausalLM


class SDARMoeForCausalLM(Qwen3MoeForCausalLM):
    pass
