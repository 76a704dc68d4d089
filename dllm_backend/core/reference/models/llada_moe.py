"""Reference network of LLaDA-MoE (`LLaDAMoEModelLM`): OLMoE layout, bidirectional.

Module tree (== checkpoint names): model.embed_tokens, model.layers.{i}.{input_layernorm,
self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm (qk_layernorm), post_attention_layernorm,
mlp.*, shared_expert.* (MoE layers with a shared expert)}, model.norm, lm_head. A layer is
dense (`mlp.{gate,up,down}_proj`) where `moe_layer_freq[i] == 0`, else MoE (`mlp.gate`,
`mlp.experts.{e}.*`, plus the persistent `mlp.expert_bias` buffer when enabled).

Routing as in the original: softmax in float32, plus the expert bias when enabled (which
then also changes the weights), top-k, and NO renormalisation; the original ignores
`norm_topk_prob`, `moe_router_score_function` and `routed_scaling_factor`, and so do we.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..base import ReferenceModel
from ..kv_cache import CacheWrite, KVCache
from ..layers import GatedMLP, RMSNorm, Rotary, cached_attention
from ._common import check_inputs, init_normal_, padding_index


def _check_config(config) -> None:
    if config.hidden_act != "silu":
        raise ValueError(
            f"LLaDA-MoE reference supports hidden_act='silu' only, got {config.hidden_act!r}"
        )
    if config.rope_scaling is not None:
        raise ValueError(
            f"LLaDA-MoE reference supports default RoPE only, got rope_scaling={config.rope_scaling!r}"
        )
    if not 0 < config.partial_rotary_factor <= 1:
        raise ValueError(f"partial_rotary_factor must be in (0, 1], got {config.partial_rotary_factor!r}")
    if len(config.moe_layer_freq) != config.num_hidden_layers:
        raise ValueError(
            f"moe_layer_freq has {len(config.moe_layer_freq)} entries for {config.num_hidden_layers} layers"
        )
    if not 1 <= config.num_experts_per_tok <= config.num_experts:
        raise ValueError(
            f"num_experts_per_tok {config.num_experts_per_tok} must be in [1, num_experts={config.num_experts}]"
        )
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(
            f"hidden_size {config.hidden_size} is not divisible by num_attention_heads {config.num_attention_heads}"
        )


class LLaDAMoEAttention(nn.Module):
    def __init__(self, config, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.n_heads = config.num_attention_heads
        self.n_kv = config.num_key_value_heads
        self.head_dim = config.hidden_size // self.n_heads
        self.clip = config.clip_qkv
        d, bias = config.hidden_size, config.attention_bias
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=bias)
        self.k_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=bias)
        self.v_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=bias)
        self.o_proj = nn.Linear(d, d, bias=bias)
        if config.qk_layernorm:
            # per-head norms of size head_dim, applied before RoPE
            self.q_norm = RMSNorm(self.head_dim, config.rms_norm_eps)
            self.k_norm = RMSNorm(self.head_dim, config.rms_norm_eps)
        else:
            self.q_norm = self.k_norm = None

    def forward(self, x, rope: Rotary, cos_sin, mask, cache, write) -> torch.Tensor:
        r, length, _ = x.shape
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        # [R, L, H*Dh] -> [R, L, H, Dh]
        q = q.view(r, length, self.n_heads, self.head_dim)
        k = k.view(r, length, self.n_kv, self.head_dim)
        v = v.view(r, length, self.n_kv, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if self.clip is not None:
            q, k, v = (t.clamp(-self.clip, self.clip) for t in (q, k, v))
        # [R, L, H, Dh] -> [R, H, L, Dh]
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        q, k = rope.apply(q, *cos_sin), rope.apply(k, *cos_sin)
        return self.o_proj(cached_attention(q, k, v, mask, cache, self.layer, write))


class LLaDAMoESparseMoeBlock(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.top_k = config.num_experts_per_tok
        self.gate = nn.Linear(config.hidden_size, config.num_experts, bias=False)
        self.experts = nn.ModuleList(
            GatedMLP(config.hidden_size, config.expert_intermediate_size) for _ in range(config.num_experts)
        )
        if config.moe_router_enable_expert_bias:
            # persistent, like the original: it is a checkpoint tensor `mlp.expert_bias`
            self.register_buffer("expert_bias", torch.zeros(config.num_experts))
        else:
            self.expert_bias = None

    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x [T, D] -> (weights [T, k] in x.dtype, expert ids [T, k]), best first."""
        probs = F.softmax(self.gate(x), dim=-1, dtype=torch.float32)  # [T, E]
        if self.expert_bias is not None:
            probs = probs + self.expert_bias
        weights, experts = torch.topk(probs, self.top_k, dim=-1)
        return weights.to(x.dtype), experts

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])  # [R, L, D] -> [T, D]
        weights, experts = self.route(x)
        out = torch.zeros_like(x)
        for e, expert in enumerate(self.experts):
            token, slot = torch.where(experts == e)
            if token.numel():
                out.index_add_(0, token, expert(x[token]) * weights[token, slot, None])
        return out.reshape(shape)


class LLaDAMoEDecoderLayer(nn.Module):
    def __init__(self, config, layer: int) -> None:
        super().__init__()
        moe = config.moe_layer_freq[layer] != 0
        self.self_attn = LLaDAMoEAttention(config, layer)
        self.mlp = (
            LLaDAMoESparseMoeBlock(config) if moe
            else GatedMLP(config.hidden_size, config.dense_intermediate_size)
        )
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        shared = config.shared_expert_intermediate_size
        self.shared_expert = GatedMLP(config.hidden_size, shared) if moe and shared is not None else None

    def forward(self, x, rope, cos_sin, mask, cache, write) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, cos_sin, mask, cache, write)
        h = self.post_attention_layernorm(x)
        out = self.mlp(h)
        if self.shared_expert is not None:
            out = out + self.shared_expert(h)
        return x + out


class LLaDAMoEModel(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_index(config))
        self.layers = nn.ModuleList(LLaDAMoEDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class LLaDAMoEModelLM(ReferenceModel):
    tied_weights = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config) -> None:
        _check_config(config)
        super().__init__(config)
        self.model = LLaDAMoEModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        head_dim = config.hidden_size // config.num_attention_heads
        self.rotary = Rotary(head_dim, config.rope_theta, config.partial_rotary_factor)

    @property
    def num_layers(self) -> int:
        return len(self.model.layers)

    def init_weights(self, generator: torch.Generator) -> None:
        init_normal_(self, generator, self.config.initializer_range or 0.02)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        write: CacheWrite = "none",
    ) -> torch.Tensor:
        check_inputs(input_ids, positions, mask, cache, write)
        x = self.model.embed_tokens(input_ids)  # [R, L, D]
        cos_sin = self.rotary.cos_sin(positions)
        for layer in self.model.layers:
            x = layer(x, self.rotary, cos_sin, mask, cache, write)
        return self.lm_head(self.model.norm(x)).float()  # [R, L, V]
