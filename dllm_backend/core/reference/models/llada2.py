"""Reference network of LLaDA2.x (`LLaDA2MoeModelLM`): the BailingMoeV2 / Ling-2.0 layout.

Tensor names: `model.word_embeddings`, per layer `attention.query_key_value` (fused q, k, v),
`attention.{query,key}_layernorm`, `attention.dense`, dense first layers `mlp.{gate,up,down}_proj`,
MoE layers `mlp.gate.{weight,expert_bias}`, `mlp.experts.{e}.*`, `mlp.shared_experts.*`;
`model.norm`, `lm_head`. RoPE covers the first `int(head_dim * partial_rotary_factor)` channels.

Routing as in the original gate (independent of `score_function` / `norm_topk_prob`): router
logits and sigmoid scores in float32; `expert_bias` is added for *selection only*; group-limited
top-k (a group scores the sum of its best two biased scores; keep `topk_group` of `n_group`
groups, then the top `num_experts_per_tok` experts there); weights are the chosen *unbiased*
scores, renormalised (+1e-20) when k > 1, times `routed_scaling_factor`. The weighted sum runs in
float32 and is cast back; the shared expert is added after.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import ReferenceModel
from ..kv_cache import CacheWrite, KVCache
from ..layers import GatedMLP, RMSNorm, apply_rope, cached_attention, rope_cos_sin
from ._common import check_inputs, check_supported, init_normal_, kaiming_uniform_


def group_limited_topk(scores: torch.Tensor, n_group: int, topk_group: int, top_k: int) -> torch.Tensor:
    """Expert choice of the BailingMoeV2 gate: scores [T, E] (biased) -> expert ids [T, k]."""
    t, e = scores.shape
    group_scores = scores.view(t, n_group, -1).topk(2, dim=-1)[0].sum(dim=-1)  # [T, n_group]
    group_idx = torch.topk(group_scores, k=topk_group, dim=-1, sorted=False)[1]
    group_mask = torch.zeros_like(group_scores).scatter_(1, group_idx, 1.0)
    expert_mask = group_mask[:, :, None].expand(t, n_group, e // n_group).reshape(t, e).bool()
    return torch.topk(scores.masked_fill(~expert_mask, float("-inf")), k=top_k, dim=-1)[1]


class LLaDA2MoeGate(nn.Module):
    """`mlp.gate.weight` [E, hidden] and the persistent `mlp.gate.expert_bias` [E]."""

    def __init__(self, config) -> None:
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.n_group, self.topk_group = config.n_group, config.topk_group
        self.routed_scaling_factor = float(config.routed_scaling_factor)
        self.weight = nn.Parameter(torch.empty(config.num_experts, config.hidden_size))
        self.register_buffer("expert_bias", torch.zeros(config.num_experts))

    def forward(self, flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """flat [T, hidden] -> (expert ids [T, k], weights [T, k] float32)."""
        logits = F.linear(flat.float(), self.weight.float())  # [T, E], routed in float32
        scores = torch.sigmoid(logits)
        experts = group_limited_topk(scores + self.expert_bias.float(), self.n_group, self.topk_group, self.top_k)
        weights = torch.gather(scores, 1, experts)
        if self.top_k > 1:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return experts, weights * self.routed_scaling_factor


class LLaDA2MoeSparseMoeBlock(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        inter = config.moe_intermediate_size
        self.experts = nn.ModuleList([GatedMLP(config.hidden_size, inter) for _ in range(config.num_experts)])
        self.gate = LLaDA2MoeGate(config)
        self.shared_experts = None
        if config.num_shared_experts is not None:  # the original builds it even for 0 (an empty MLP)
            self.shared_experts = GatedMLP(config.hidden_size, inter * config.num_shared_experts)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r, length, hidden = x.shape
        flat = x.reshape(-1, hidden)  # [T, hidden]
        experts, weights = self.gate(flat)  # [T, k] each
        picked = torch.empty(*experts.shape, hidden, dtype=x.dtype, device=x.device)  # [T, k, hidden]
        for e, expert in enumerate(self.experts):
            tokens, slots = torch.where(experts == e)
            if tokens.numel():
                picked[tokens, slots] = expert(flat[tokens])
        y = (picked.float() * weights[..., None]).sum(dim=1).to(x.dtype).view(r, length, hidden)
        if self.shared_experts is not None:
            y = y + self.shared_experts(x)
        return y


class LLaDA2MoeAttention(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.heads, self.kv_heads = config.num_attention_heads, config.num_key_value_heads
        self.head_dim = config.head_dim
        fused = (self.heads + 2 * self.kv_heads) * self.head_dim
        self.query_key_value = nn.Linear(config.hidden_size, fused, bias=config.use_qkv_bias)
        self.use_qk_norm = bool(config.use_qk_norm)
        if self.use_qk_norm:
            self.query_layernorm = RMSNorm(self.head_dim, config.rms_norm_eps)
            self.key_layernorm = RMSNorm(self.head_dim, config.rms_norm_eps)
        self.dense = nn.Linear(self.heads * self.head_dim, config.hidden_size, bias=config.use_bias)

    def forward(self, x, cos, sin, mask, cache, layer, write) -> torch.Tensor:
        r, length, _ = x.shape
        # fused rows: [q heads | k heads | v heads], each head_dim wide
        qkv = self.query_key_value(x).view(r, length, self.heads + 2 * self.kv_heads, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in qkv.split([self.heads, self.kv_heads, self.kv_heads], dim=2))
        if self.use_qk_norm:  # [R, H, L, D]: per head
            q, k = self.query_layernorm(q), self.key_layernorm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        return self.dense(cached_attention(q, k, v, mask, cache, layer, write))


class LLaDA2MoeDecoderLayer(nn.Module):
    def __init__(self, config, layer: int) -> None:
        super().__init__()
        self.attention = LLaDA2MoeAttention(config)
        if config.is_sparse_layer(layer):
            self.mlp: nn.Module = LLaDA2MoeSparseMoeBlock(config)
        else:
            self.mlp = GatedMLP(config.hidden_size, config.intermediate_size)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, cache, layer, write) -> torch.Tensor:
        h = x + self.attention(self.input_layernorm(x), cos, sin, mask, cache, layer, write)
        return h + self.mlp(self.post_attention_layernorm(h))


class LLaDA2MoeModel(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([LLaDA2MoeDecoderLayer(config, i) for i in range(config.num_hidden_layers)])
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class LLaDA2MoeModelLM(ReferenceModel):
    tied_weights = {"lm_head.weight": "model.word_embeddings.weight"}

    def __init__(self, config) -> None:
        super().__init__(config)
        check_supported(config, "LLaDA2MoeModelLM")
        if config.norm_head:
            raise ValueError("LLaDA2MoeModelLM: norm_head=True is not supported (the released checkpoints use False)")
        self.model = LLaDA2MoeModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.word_embeddings.weight

    @property
    def num_layers(self) -> int:
        return len(self.model.layers)

    @torch.no_grad()
    def init_weights(self, generator: torch.Generator) -> None:
        """HF `_init_weights`; router weights keep the original's kaiming-uniform draw, biases 0."""
        init_normal_(self, generator, self.config.initializer_range or 0.02)
        for module in self.modules():
            if isinstance(module, LLaDA2MoeGate):
                kaiming_uniform_(module.weight, generator)
                module.expert_bias.zero_()

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        write: CacheWrite = "none",
    ) -> torch.Tensor:
        check_inputs(input_ids, positions, mask, cache, write)
        c = self.config
        h = self.model.word_embeddings(input_ids)  # [R, L, hidden]
        cos, sin = rope_cos_sin(positions, int(c.head_dim * c.partial_rotary_factor), c.rope_theta)  # [R, 1, L, rot]
        for i, layer in enumerate(self.model.layers):
            h = layer(h, cos, sin, mask, cache, i, write)
        return self.lm_head(self.model.norm(h)).float()  # [R, L, V]
