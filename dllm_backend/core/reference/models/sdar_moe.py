"""Reference network of SDAR-MoE (`SDARMoeForCausalLM`): SDAR attention with Qwen3-MoE sparse MLPs.

Routing as in the original (Qwen3-MoE): softmax over all experts in float32, top-k, the
chosen probabilities renormalised to sum 1 when `norm_topk_prob`, cast to the activation
dtype; each expert's output is scaled by its weight and summed. Layers listed in
`mlp_only_layers` (or off the `decoder_sparse_step` grid) keep a dense MLP.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers import GatedMLP
from ._common import FusedWeightRMSNorm
from ._qwen import QwenCausalLM, QwenDecoderLayer
from .sdar import sdar_attention


def softmax_topk(
    router_logits: torch.Tensor, top_k: int, renormalize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Qwen3-MoE routing: router_logits [T, E] -> (weights [T, k] float32, experts [T, k])."""
    probs = torch.softmax(router_logits, dim=-1, dtype=torch.float32)
    weights, experts = torch.topk(probs, top_k, dim=-1)
    if renormalize:
        weights = weights / weights.sum(dim=-1, keepdim=True)
    return weights, experts


class SDARMoeSparseMoeBlock(nn.Module):
    """`mlp.gate` (router, no bias) and `mlp.experts.{e}.{gate,up,down}_proj`."""

    def __init__(self, config) -> None:
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.norm_topk_prob = bool(config.norm_topk_prob)
        self.gate = nn.Linear(config.hidden_size, config.num_experts, bias=False)
        self.experts = nn.ModuleList(
            [GatedMLP(config.hidden_size, config.moe_intermediate_size) for _ in range(config.num_experts)]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, length, hidden = x.shape
        flat = x.reshape(-1, hidden)  # [T, hidden], T = R * L
        weights, experts = softmax_topk(self.gate(flat), self.top_k, self.norm_topk_prob)
        weights = weights.to(x.dtype)  # the original scales expert outputs in the activation dtype
        out = torch.zeros_like(flat)
        for e, expert in enumerate(self.experts):
            tokens, slots = torch.where(experts == e)
            if tokens.numel():
                out.index_add_(0, tokens, expert(flat[tokens]) * weights[tokens, slots, None])
        return out.view(r, length, hidden)


def _layer(config, index: int) -> QwenDecoderLayer:
    if config.is_sparse_layer(index):
        mlp: nn.Module = SDARMoeSparseMoeBlock(config)
    else:
        mlp = GatedMLP(config.hidden_size, config.intermediate_size)
    return QwenDecoderLayer(config, sdar_attention(config), mlp, FusedWeightRMSNorm)


class SDARMoeForCausalLM(QwenCausalLM):
    def __init__(self, config) -> None:
        super().__init__(config, _layer, FusedWeightRMSNorm)
