"""Building blocks shared by the reference networks, written to match HF numerics in fp32."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .kv_cache import CacheWrite, KVCache


class RMSNorm(nn.Module):
    """RMSNorm computed in float32, cast back before the weight (as HF Llama/Qwen do)."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope_cos_sin(positions: torch.Tensor, rotary_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """NeoX RoPE tables in float32: positions [R, L] -> cos, sin [R, 1, L, rotary_dim].

    NOTE: the inverse frequencies are rebuilt per call rather than kept as a buffer,
    because `model.to(bfloat16)` would round a buffer and shift every angle.
    """
    exponents = torch.arange(0, rotary_dim, 2, dtype=torch.int64, device=positions.device).float()
    inv_freq = 1.0 / (theta ** (exponents / rotary_dim))  # [rotary_dim / 2]
    freqs = positions.float()[..., None] * inv_freq  # [R, L, rotary_dim / 2]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos()[:, None], emb.sin()[:, None]


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, float32: bool = False) -> torch.Tensor:
    """Rotates the first `cos.shape[-1]` channels of x [R, H, L, D] (partial RoPE passes the rest).

    float32=True rotates in float32 and casts the result (LLaDA's `rope_full_precision`);
    otherwise cos/sin are cast to x's dtype first, as HF Llama/Qwen code does. The two
    agree exactly in float32 and differ only in bf16/fp16 rounding.
    """
    rot_dim = cos.shape[-1]
    rot, rest = x[..., :rot_dim], x[..., rot_dim:]
    if float32:
        rot_f = rot.float()
        rot = (rot_f * cos + rotate_half(rot_f) * sin).to(x.dtype)
    else:
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        rot = rot * cos + rotate_half(rot) * sin
    return torch.cat((rot, rest), dim=-1) if rest.shape[-1] else rot


class Rotary(nn.Module):
    """NeoX RoPE over the first `head_dim * partial_factor` channels (see `apply_rope`)."""

    def __init__(self, head_dim: int, theta: float, partial_factor: float = 1.0, float32: bool = False) -> None:
        super().__init__()
        self.rotary_dim = int(head_dim * partial_factor)
        self.theta = float(theta)
        self.float32 = float32

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return rope_cos_sin(positions, self.rotary_dim, self.theta)

    def apply(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return apply_rope(x, cos, sin, self.float32)


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
) -> torch.Tensor:
    """Scaled dot-product attention with GQA.

    q [R, H, L, D]; k, v [R, H_kv, S, D]; mask bool [R, L, S] (True = may attend) or None
    for full visibility. Returns [R, L, H * D].
    """
    rep = q.shape[1] // k.shape[1]
    if rep > 1:
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
    attn_mask = None if mask is None else mask[:, None]
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
    r, h, length, d = out.shape
    return out.transpose(1, 2).reshape(r, length, h * d)


def cached_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None,
    cache: KVCache | None,
    layer: int,
    write: CacheWrite,
) -> torch.Tensor:
    """`attention` over cache + new keys; the cache decides what is kept (see kv_cache)."""
    if cache is not None:
        k, v = cache.update(layer, k, v, write)
    return attention(q, k, v, mask)


class GatedMLP(nn.Module):
    """down(silu(gate(x)) * up(x)); subclasses rename the projections to match checkpoints."""

    def __init__(self, hidden: int, inter: int, bias: bool = False) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, inter, bias=bias)
        self.up_proj = nn.Linear(hidden, inter, bias=bias)
        self.down_proj = nn.Linear(inter, hidden, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
