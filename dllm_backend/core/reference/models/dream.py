"""Reference network of Dream / DiffuCoder (`DreamModel`): Qwen2 layout, bidirectional.

Module tree (== checkpoint names): model.embed_tokens, model.layers.{i}.{input_layernorm,
self_attn.{q,k,v}_proj (with bias), self_attn.o_proj (no bias), post_attention_layernorm,
mlp.{gate,up,down}_proj}, model.norm, lm_head. Logits are raw (unshifted): the generator
reads token i from position i - 1.
"""
from __future__ import annotations

import torch
from torch import nn

from ..base import ReferenceModel
from ..kv_cache import CacheWrite, KVCache
from ..layers import GatedMLP, RMSNorm, cached_attention
from ._common import HFRotary, check_inputs, init_normal_, padding_index


def _check_config(config) -> None:
    if config.hidden_act != "silu":
        raise ValueError(
            f"Dream reference supports hidden_act='silu' only, got {config.hidden_act!r}"
        )
    if config.rope_scaling is not None:
        raise ValueError(
            f"Dream reference supports default RoPE only, got rope_scaling={config.rope_scaling!r}"
        )
    if config.use_sliding_window:
        raise ValueError("Dream reference supports full attention only, got use_sliding_window=True")
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(
            f"hidden_size {config.hidden_size} is not divisible by num_attention_heads {config.num_attention_heads}"
        )


class DreamAttention(nn.Module):
    def __init__(self, config, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.n_heads = config.num_attention_heads
        self.n_kv = config.num_key_value_heads
        self.head_dim = config.hidden_size // self.n_heads
        d = config.hidden_size
        # NOTE: Qwen2/Dream hard-code q/k/v biases and no o_proj bias (no config switch)
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=True)
        self.k_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=True)
        self.v_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=True)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, d, bias=False)

    def forward(self, x, rope: HFRotary, cos_sin, mask, cache, write) -> torch.Tensor:
        r, length, _ = x.shape
        # [R, L, H*Dh] -> [R, H, L, Dh]
        q = self.q_proj(x).view(r, length, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(r, length, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(r, length, self.n_kv, self.head_dim).transpose(1, 2)
        q, k = rope.apply(q, *cos_sin), rope.apply(k, *cos_sin)
        return self.o_proj(cached_attention(q, k, v, mask, cache, self.layer, write))


class DreamDecoderLayer(nn.Module):
    def __init__(self, config, layer: int) -> None:
        super().__init__()
        self.self_attn = DreamAttention(config, layer)
        self.mlp = GatedMLP(config.hidden_size, config.intermediate_size)
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, rope, cos_sin, mask, cache, write) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, cos_sin, mask, cache, write)
        return x + self.mlp(self.post_attention_layernorm(x))


class DreamBaseModel(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_index(config))
        self.layers = nn.ModuleList(DreamDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)


class DreamModel(ReferenceModel):
    tied_weights = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config) -> None:
        _check_config(config)
        super().__init__(config)
        self.model = DreamBaseModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.rotary = HFRotary(config.hidden_size // config.num_attention_heads, config.rope_theta)

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
