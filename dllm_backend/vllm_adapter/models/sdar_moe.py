"""SDAR-MoE (`SDARMoeForCausalLM`) as a vLLM model: exactly vLLM's Qwen3-MoE network.

SDAR-MoE's weights, names and layer math are Qwen3-MoE's: SDAR attention (per-head q/k
RMSNorm, `attention_bias`), softmax top-k routing renormalised when `norm_topk_prob`, dense
MLPs on `mlp_only_layers` and off the `decoder_sparse_step` grid. vLLM's
`Qwen3MoeForCausalLM` reads exactly those keys, so the real checkpoint loads as it is.
"""
from __future__ import annotations

from vllm.model_executor.models.qwen3_moe import Qwen3MoeForCausalLM


class SDARMoeForCausalLM(Qwen3MoeForCausalLM):
    pass
