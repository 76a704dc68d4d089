"""The Qwen2 / Qwen3 module tree shared by Dream, SDAR, SDAR-MoE and Fast-dLLM v2.

Tensor names: `model.embed_tokens`, `model.layers.{i}.{input_layernorm, self_attn.{q,k,v,o}_proj,
self_attn.{q,k}_norm (Qwen3 only), post_attention_layernorm, mlp.*}`, `model.norm`, `lm_head`.
The families differ only in biases, the per-head q/k norm, the norm variant and the MLP.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..base import ReferenceModel
from ..kv_cache import CacheWrite, KVCache
from ..layers import RMSNorm, apply_rope, cached_attention, rope_cos_sin
from ._common import check_inputs, check_supported, head_dim_of, init_normal_, padding_index


class QwenAttention(nn.Module):
    """Self-attention under `self_attn`; `qk_norm` adds Qwen3's per-head RMSNorm before RoPE."""

    def __init__(
        self, config, qkv_bias: bool, o_bias: bool, qk_norm: bool, norm_cls: type[RMSNorm]
    ) -> None:
        super().__init__()
        self.head_dim = head_dim_of(config)
        hidden, heads, kv_heads = config.hidden_size, config.num_attention_heads, config.num_key_value_heads
        self.q_proj = nn.Linear(hidden, heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(hidden, kv_heads * self.head_dim, bias=qkv_bias)
        self.o_proj = nn.Linear(heads * self.head_dim, hidden, bias=o_bias)
        self.qk_norm = qk_norm
        if qk_norm:
            self.q_norm = norm_cls(self.head_dim, config.rms_norm_eps)
            self.k_norm = norm_cls(self.head_dim, config.rms_norm_eps)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: KVCache | None,
        layer: int,
        write: CacheWrite,
    ) -> torch.Tensor:
        r, length, _ = x.shape
        # [R, L, H * D] -> [R, L, H, D]; the norm acts per head, before the transpose
        q = self.q_proj(x).view(r, length, -1, self.head_dim)
        k = self.k_proj(x).view(r, length, -1, self.head_dim)
        v = self.v_proj(x).view(r, length, -1, self.head_dim)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [R, H, L, D]
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        out = cached_attention(q, k, v, mask, cache, layer, write)  # [R, L, H * D]
        return self.o_proj(out)


class QwenDecoderLayer(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then h + mlp(norm(h))."""

    def __init__(self, config, attn: QwenAttention, mlp: nn.Module, norm_cls: type[RMSNorm]) -> None:
        super().__init__()
        self.self_attn = attn
        self.mlp = mlp
        self.input_layernorm = norm_cls(config.hidden_size, config.rms_norm_eps)
        self.post_attention_layernorm = norm_cls(config.hidden_size, config.rms_norm_eps)

    def forward(self, x, cos, sin, mask, cache, layer, write) -> torch.Tensor:
        h = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, layer, write)
        return h + self.mlp(self.post_attention_layernorm(h))


class QwenModel(nn.Module):
    """The backbone under `model.`: embeddings, decoder layers, final norm."""

    def __init__(self, config, layers: list[QwenDecoderLayer], norm_cls: type[RMSNorm]) -> None:
        super().__init__()
        # NOTE: HF Qwen2/Qwen3 pass padding_idx=pad_token_id: its row starts at zero
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, padding_index(config))
        self.layers = nn.ModuleList(layers)
        self.norm = norm_cls(config.hidden_size, config.rms_norm_eps)


LayerFactory = Callable[[object, int], QwenDecoderLayer]


class QwenCausalLM(ReferenceModel):
    """`model` + `lm_head`; subclasses pick the layer factory and the norm variant."""

    tied_weights = {"lm_head.weight": "model.embed_tokens.weight"}

    def __init__(self, config, make_layer: LayerFactory, norm_cls: type[RMSNorm]) -> None:
        super().__init__(config)
        check_supported(config, type(self).__name__)
        layers = [make_layer(config, i) for i in range(config.num_hidden_layers)]
        self.model = QwenModel(config, layers, norm_cls)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self._head_dim = head_dim_of(config)

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
        h = self.model.embed_tokens(input_ids)  # [R, L, hidden] in the parameter dtype
        cos, sin = rope_cos_sin(positions, self._head_dim, self.config.rope_theta)  # [R, 1, L, D]
        for i, layer in enumerate(self.model.layers):
            h = layer(h, cos, sin, mask, cache, i, write)
        return self.lm_head(self.model.norm(h)).float()  # [R, L, V]
