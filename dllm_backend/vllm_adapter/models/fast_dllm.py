"""Fast-dLLM v2 as a vLLM model: exactly vLLM's Qwen2 network."""
from __future__ import annotations

from vllm.model_executor.models.qwen2 import Qwen2ForCausalLM


class Fast_dLLM_QwenForCausalLM(Qwen2ForCausalLM):  # noqa: N801 - the checkpoint's own class name
    pass
