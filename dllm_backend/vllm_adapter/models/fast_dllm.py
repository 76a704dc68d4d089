"""Fast-dLLM v2 (`Fast_dLLM_QwenForCausalLM`) as a vLLM model: exactly vLLM's Qwen2 network.

Fast-dLLM v2 is Qwen2.5 fine-tuned for block diffusion: same names and layer math (q/k/v
biases, no o_proj bias), a head tied to the embeddings when `tie_word_embeddings` (1.5B) and
untied otherwise (7B), both handled by vLLM's `Qwen2ForCausalLM`. Logits are raw; the shift
and the block-causal pattern over `bd_size` blocks are the executor's business.
"""
from __future__ import annotations

from vllm.model_executor.models.qwen2 import Qwen2ForCausalLM


class Fast_dLLM_QwenForCausalLM(Qwen2ForCausalLM):  # noqa: N801 - the checkpoint's own class name
    pass
