"""Reference network of LLaDA-8B (`LLaDAModelLM`), mirroring the OLMo-derived modeling_llada.py.

Module tree (== checkpoint names): model.transformer.{wte, blocks.{i}.{attn_norm, q_proj,
k_proj, v_proj, attn_out, ff_norm, ff_proj, up_proj, ff_out}, ln_f, ff_out}. With
`weight_tying` the original has no `ff_out` head at all and projects with `wte.weight`, so
nothing is tied by name here.

Logits cover all `embedding_size` rows (the original does not cut them to `vocab_size`).
Only the released layout is built: llama blocks, RMS norms, RoPE; other OLMo options raise.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..base import ReferenceModel
from ..kv_cache import CacheWrite, KVCache
from ..layers import Rotary, cached_attention
from ._common import check_inputs, init_normal_

# activation_type -> activation of the llama block's gate (`ff_proj`)
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": F.silu,
    "gelu": F.gelu,
    "relu": F.relu,
}

# config key -> the only value this network builds (what every released checkpoint uses)
_REQUIRED: dict[str, object] = {
    "block_type": "llama",
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "rope": True,
    "alibi": False,
    "attention_layer_norm": False,
    "block_group_size": 1,
}


def _check_config(config) -> None:
    for key, want in _REQUIRED.items():
        got = getattr(config, key)
        if got != want:
            raise ValueError(f"LLaDA reference supports {key}={want!r} only, got {key}={got!r}")
    if config.activation_type not in _ACTIVATIONS:
        raise ValueError(
            f"unsupported activation_type {config.activation_type!r}; valid: {', '.join(_ACTIVATIONS)}"
        )
    if config.d_model % config.n_heads:
        raise ValueError(f"d_model {config.d_model} is not divisible by n_heads {config.n_heads}")
    if config.embedding_size is not None and config.embedding_size < config.vocab_size:
        raise ValueError(
            f"embedding_size {config.embedding_size} must be >= vocab_size {config.vocab_size}"
        )


class LLaDARMSNorm(nn.Module):
    """OLMo RMSLayerNorm: normalise in float32, cast back, then weight (and optional bias)."""

    def __init__(self, dim: int, eps: float, bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = (h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype)
        return self.weight * h + self.bias if self.bias is not None else self.weight * h


def _norm(config) -> LLaDARMSNorm:
    # bias_for_layer_norm None means "same as include_bias" in the original
    bias = config.bias_for_layer_norm
    return LLaDARMSNorm(config.d_model, config.rms_norm_eps, config.include_bias if bias is None else bias)


class LLaDALlamaBlock(nn.Module):
    """x + attn_out(attn(attn_norm(x))), then + ff_out(act(ff_proj(h)) * up_proj(h))."""

    def __init__(self, config, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.n_heads = config.n_heads
        self.n_kv = config.effective_n_kv_heads
        self.head_dim = config.d_model // config.n_heads
        hidden = config.mlp_hidden_size or config.mlp_ratio * config.d_model
        qkv_bias = bool(config.include_bias or config.include_qkv_bias)
        d = config.d_model
        self.attn_norm = _norm(config)
        self.q_proj = nn.Linear(d, self.n_heads * self.head_dim, bias=qkv_bias)
        self.k_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=qkv_bias)
        self.v_proj = nn.Linear(d, self.n_kv * self.head_dim, bias=qkv_bias)
        self.attn_out = nn.Linear(d, d, bias=config.include_bias)
        self.ff_norm = _norm(config)
        self.ff_proj = nn.Linear(d, hidden, bias=config.include_bias)  # the gate
        self.up_proj = nn.Linear(d, hidden, bias=config.include_bias)
        self.ff_out = nn.Linear(hidden, d, bias=config.include_bias)
        self.act = _ACTIVATIONS[config.activation_type]

    def forward(
        self,
        x: torch.Tensor,
        rope: Rotary,
        cos_sin: tuple[torch.Tensor, torch.Tensor],
        mask: torch.Tensor | None,
        cache: KVCache | None,
        write: CacheWrite,
    ) -> torch.Tensor:
        r, length, _ = x.shape
        h = self.attn_norm(x)
        # [R, L, H*Dh] -> [R, H, L, Dh]
        q = self.q_proj(h).view(r, length, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(h).view(r, length, self.n_kv, self.head_dim).transpose(1, 2)
        v = self.v_proj(h).view(r, length, self.n_kv, self.head_dim).transpose(1, 2)
        q, k = rope.apply(q, *cos_sin), rope.apply(k, *cos_sin)
        x = x + self.attn_out(cached_attention(q, k, v, mask, cache, self.layer, write))
        h = self.ff_norm(x)
        return x + self.ff_out(self.act(self.ff_proj(h)) * self.up_proj(h))


class LLaDAModel(nn.Module):
    def __init__(self, config) -> None:
        super().__init__()
        rows = config.embedding_size or config.vocab_size
        parts: dict[str, nn.Module] = {
            "wte": nn.Embedding(rows, config.d_model),
            "blocks": nn.ModuleList(LLaDALlamaBlock(config, i) for i in range(config.n_layers)),
            "ln_f": _norm(config),
        }
        if not config.weight_tying:
            parts["ff_out"] = nn.Linear(config.d_model, rows, bias=config.include_bias)
        self.transformer = nn.ModuleDict(parts)


class LLaDAModelLM(ReferenceModel):
    def __init__(self, config) -> None:
        _check_config(config)
        super().__init__(config)
        self.model = LLaDAModel(config)
        head_dim = config.d_model // config.n_heads
        # rope_full_precision rotates in float32; otherwise in the activation dtype (like HF)
        self.rotary = Rotary(head_dim, config.rope_theta, float32=bool(config.rope_full_precision))

    @property
    def num_layers(self) -> int:
        return len(self.model.transformer["blocks"])

    def init_weights(self, generator: torch.Generator) -> None:
        init_normal_(self, generator, getattr(self.config, "init_std", None) or 0.02)

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        write: CacheWrite = "none",
    ) -> torch.Tensor:
        check_inputs(input_ids, positions, mask, cache, write)
        t = self.model.transformer
        x = t["wte"](input_ids)  # [R, L, D]
        if self.config.input_emb_norm:
            x = x * (self.config.d_model**0.5)
        cos_sin = self.rotary.cos_sin(positions)
        for block in t["blocks"]:
            x = block(x, self.rotary, cos_sin, mask, cache, write)
        x = t["ln_f"](x)
        logits = F.linear(x, t["wte"].weight) if self.config.weight_tying else t["ff_out"](x)
        if self.config.scale_logits:
            logits = logits * (1 / math.sqrt(self.config.d_model))
        return logits.float()  # [R, L, embedding_size]
