"""LLaDA2 as a vLLM model: vLLM's Bailing-MoE v2 network."""
from __future__ import annotations

from vllm.model_executor.models.bailing_moe import BailingMoeV2ForCausalLM


class LLaDA2MoeModelLM(BailingMoeV2ForCausalLM):
    pass
