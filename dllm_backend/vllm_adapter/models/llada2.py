"""LLaDA2.x (`LLaDA2MoeModelLM`) as a vLLM model: vLLM's Bailing-MoE v2 network, routed as the original.

LLaDA2's weights, names and layers are Ling-2.0's (BailingMoeV2): fused `query_key_value`,
per-head q/k RMSNorm, partial RoPE, dense first `first_k_dense_replace` layers, then
group-limited routed experts plus shared experts. vLLM's `BailingMoeV2ForCausalLM` builds
exactly that, but takes some choices from config keys that LLaDA2's modeling code treats as
descriptive only; `as_original` pins them to what the original computes (see
`core/configs/llada2.py` and the reference network `core/reference/models/llada2.py`).
"""
from __future__ import annotations

from vllm.config import VllmConfig
from vllm.model_executor.models.bailing_moe import BailingMoeV2ForCausalLM


def as_original(config) -> None:
    """Sets the routing / RoPE keys vLLM's Bailing layers read to the original's behaviour (in place).

    Raises ValueError for layouts the original does not build the way vLLM would (biases
    beyond q/k/v, a normalised head), which no released LLaDA2 checkpoint uses.
    """
    if config.use_bias:
        raise ValueError("LLaDA2MoeModelLM in vLLM: use_bias=True is not supported (released checkpoints use False)")
    if config.norm_head:
        raise ValueError("LLaDA2MoeModelLM in vLLM: norm_head=True is not supported (released checkpoints use False)")
    # the original's q/k norms are RMSNorms whatever use_rmsnorm says
    config.use_rmsnorm = True
    # the original always scores experts with a sigmoid and adds `gate.expert_bias` (a
    # checkpoint tensor) for expert selection only, whatever score_function and
    # moe_router_enable_expert_bias say
    config.score_function = "sigmoid"
    config.moe_router_enable_expert_bias = True
    # ... renormalises the chosen weights whenever more than one expert is chosen
    config.norm_topk_prob = config.num_experts_per_tok > 1
    # ... routes in float32
    config.router_dtype = "fp32"
    # ... rotates int(head_dim * partial_rotary_factor) channels; vLLM prefers `rotary_dim`
    head_dim = config.head_dim or config.hidden_size // config.num_attention_heads
    config.rotary_dim = int(head_dim * config.partial_rotary_factor)
    # ... builds no shared expert for num_shared_experts None (vLLM compares it with 0)
    if config.num_shared_experts is None:
        config.num_shared_experts = 0


class LLaDA2MoeModelLM(BailingMoeV2ForCausalLM):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        as_original(vllm_config.model_config.hf_config.get_text_config())
        super().__init__(vllm_config=vllm_config, prefix=prefix)
