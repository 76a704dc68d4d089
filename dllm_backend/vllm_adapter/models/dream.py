"""Dream / DiffuCoder (`DreamModel`) as a vLLM model: exactly vLLM's Qwen2 network."""
from __future__ import annotations

from vllm.model_executor.models.qwen2 import Qwen2ForCausalLM


class DreamModel(Qwen2ForCausalLM):
    pass
