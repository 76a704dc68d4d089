"""HF-exact numerics shared by the block-causal reference networks: RoPE casts, norm variant, init, input checks.

The shared `layers.py` helpers compute RoPE in float32 and cast the result; the HF modeling
code of SDAR, LLaDA2 and Fast-dLLM v2 instead casts cos/sin to the activation dtype first
and rotates in that dtype. Both agree exactly in float32; these keep bf16 runs faithful too.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..layers import RMSNorm, rotate_half


def rope_cos_sin(
    positions: torch.Tensor, head_dim: int, theta: float, partial_factor: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """HF default RoPE tables in float32: positions [R, L] -> cos, sin [R, 1, L, rot].

    rot = int(head_dim * partial_factor). The inverse frequencies are rebuilt per call
    rather than kept in a buffer, so `model.to(bfloat16)` cannot round them (HF keeps
    them in float32 too).
    """
    rot = int(head_dim * partial_factor)
    exponents = torch.arange(0, rot, 2, dtype=torch.int64, device=positions.device).float() / rot
    inv_freq = 1.0 / (theta**exponents)  # [rot / 2]
    freqs = positions.float()[..., None] * inv_freq  # [R, L, rot / 2]
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos()[:, None], emb.sin()[:, None]


def head_dim_of(config) -> int:
    """The config's `head_dim`, or hidden / heads where the family has no such key (Qwen2)."""
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """HF `apply_rotary_pos_emb` on one tensor, partial-rotary aware.

    x [R, H, L, D]; cos, sin [R, 1, L, rot] float32 from `Rotary.cos_sin`. The first `rot`
    channels rotate (NeoX halves), the rest pass through.
    """
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    rot = cos.shape[-1]
    x_rot, x_pass = x[..., :rot], x[..., rot:]
    out = x_rot * cos + rotate_half(x_rot) * sin
    return torch.cat((out, x_pass), dim=-1) if x_pass.shape[-1] else out


class FusedWeightRMSNorm(RMSNorm):
    """RMSNorm as flash-attn's fused `rms_norm_fn`: the weight multiplies in float32, then one cast.

    SDAR's modeling code always normalises with that kernel (HF's form casts before the
    weight); the two differ only below float32.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return (h * self.weight.float()).to(x.dtype)


@torch.no_grad()
def init_hf_weights(model: nn.Module, generator: torch.Generator, std: float) -> None:
    """HF `_init_weights`: normal(0, std) Linear/Embedding weights, zero biases, unit norms.

    Modules are visited in registration order, so a seeded generator fixes every tensor.
    """
    for module in model.modules():
        if isinstance(module, nn.Linear):
            module.weight.normal_(0.0, std, generator=generator)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.normal_(0.0, std, generator=generator)
        elif isinstance(module, RMSNorm):
            module.weight.fill_(1.0)


@torch.no_grad()
def kaiming_uniform_(weight: torch.Tensor, generator: torch.Generator) -> None:
    """`nn.init.kaiming_uniform_(w, a=sqrt(5))` (nn.Linear's default), drawn from `generator`."""
    bound = 1.0 / math.sqrt(weight.shape[1])  # gain sqrt(1/3) * sqrt(3 / fan_in)
    weight.uniform_(-bound, bound, generator=generator)


def check_inputs(input_ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None) -> None:
    """Validates the forward contract of `ReferenceModel` (shapes and dtypes), raising ValueError."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [R, L], got shape {tuple(input_ids.shape)}")
    if positions.shape != input_ids.shape:
        raise ValueError(f"positions shape {tuple(positions.shape)} != input_ids shape {tuple(input_ids.shape)}")
    if mask is None:
        return
    r, length = input_ids.shape
    if mask.dtype != torch.bool or mask.dim() != 3 or tuple(mask.shape[:2]) != (r, length):
        raise ValueError(f"mask must be bool [R={r}, L={length}, S], got {mask.dtype} {tuple(mask.shape)}")


def check_supported(config, name: str) -> None:
    """Rejects config features the reference networks do not implement, naming the value."""
    scaling = getattr(config, "rope_scaling", None)
    if scaling:
        raise ValueError(f"{name}: rope_scaling {scaling!r} is not supported (default RoPE only)")
    if getattr(config, "use_sliding_window", False):
        raise ValueError(f"{name}: use_sliding_window=True is not supported (full attention only)")
    act = getattr(config, "hidden_act", "silu")
    if act != "silu":
        raise ValueError(f"{name}: hidden_act {act!r} is not supported; valid: 'silu'")
