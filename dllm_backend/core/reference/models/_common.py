"""Numerics and plumbing shared by the reference networks of this folder.

- `Fp32Rotary`: `layers.Rotary` (rotation in float32) whose frequencies stay float32 when the
  model is cast: `layers.Rotary` keeps them in a buffer, which `model.to(torch.bfloat16)`
  rounds, while the originals always build cos/sin from float32 frequencies.
- `HFRotary`: RoPE the way HF Llama/Qwen2/OLMoE code applies it (cos/sin built in float32,
  then cast to the activation dtype and applied in that dtype). Both agree exactly in float32
  and differ in bf16.
- `init_normal_`: `_init_weights`-style random init driven by one `torch.Generator`.
- `check_inputs`: the forward contract's shape checks, with `ValueError`s naming the value.
- `padding_index`: the embedding pad row of HF-layout models, validated against the vocab.
"""
from __future__ import annotations

import torch
from torch import nn

from ..kv_cache import CacheWrite, KVCache
from ..layers import Rotary, rotate_half


class Fp32Rotary(Rotary):
    """NeoX RoPE over the first `rotary_dim` channels, rotated in float32."""

    def __init__(self, head_dim: int, theta: float, partial_factor: float = 1.0) -> None:
        super().__init__(head_dim, theta, partial_factor)
        self.theta = float(theta)

    def cos_sin(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # positions [R, L] -> cos, sin [R, 1, L, rotary_dim] float32; frequencies rebuilt in
        # float32 because the inherited buffer follows the model's dtype
        steps = torch.arange(0, self.rotary_dim, 2, dtype=torch.int64, device=positions.device).float()
        inv_freq = 1.0 / (self.theta ** (steps / self.rotary_dim))
        freqs = positions.float()[..., None] * inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return emb.cos()[:, None], emb.sin()[:, None]


class HFRotary(Fp32Rotary):
    """NeoX RoPE over the first `rotary_dim` channels, applied in the activation dtype."""

    def apply(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        # x [R, H, L, D]; cos, sin [R, 1, L, rotary_dim] float32. NOTE: HF casts cos/sin to
        # x.dtype *before* rotating, so in bf16 the product is rounded like the original.
        rot, rest = x[..., : self.rotary_dim], x[..., self.rotary_dim :]
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        rot = rot * cos + rotate_half(rot) * sin
        return torch.cat((rot, rest), dim=-1) if rest.shape[-1] else rot


@torch.no_grad()
def init_normal_(model: nn.Module, generator: torch.Generator, std: float) -> None:
    """Linear/Embedding weights ~ N(0, std), biases 0, norm weights 1, embedding pad rows 0.

    Modules are visited in registration order, so one seed fixes every tensor bit for bit.
    A parameter shared by two modules (tied embeddings) is drawn once.
    """
    if not std > 0:
        raise ValueError(f"init std must be positive, got {std!r}")
    seen: set[int] = set()
    for module in model.modules():
        weight = getattr(module, "weight", None)
        if not isinstance(weight, nn.Parameter) or id(weight) in seen:
            continue
        seen.add(id(weight))
        if isinstance(module, (nn.Linear, nn.Embedding)):
            weight.normal_(0.0, std, generator=generator)
            pad = getattr(module, "padding_idx", None)
            if pad is not None:
                weight[pad].zero_()
        else:  # a norm: its scale starts at one
            weight.fill_(1.0)
        bias = getattr(module, "bias", None)
        if isinstance(bias, nn.Parameter):
            bias.zero_()


def padding_index(config) -> int | None:
    """The embedding's padding row (HF zeroes it at init); ValueError if outside the vocab."""
    pad = config.pad_token_id
    if pad is not None and not 0 <= pad < config.vocab_size:
        raise ValueError(f"pad_token_id {pad} is outside the vocabulary [0, {config.vocab_size})")
    return pad


def check_inputs(
    input_ids: torch.Tensor,
    positions: torch.Tensor,
    mask: torch.Tensor | None,
    cache: KVCache | None,
    write: CacheWrite,
) -> None:
    """Validates the reference forward contract (see reference/base.py)."""
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [R, L], got shape {tuple(input_ids.shape)}")
    if positions.shape != input_ids.shape:
        raise ValueError(
            f"positions shape {tuple(positions.shape)} must equal input_ids shape {tuple(input_ids.shape)}"
        )
    if write != "none" and cache is None:
        raise ValueError(f"cache write {write!r} needs a cache")
    if mask is None:
        return
    r, length = input_ids.shape
    cached = cache.length if cache is not None else 0
    # an in-place overwrite attends to the whole (already sized) cache; otherwise cache + new
    keys = cached if isinstance(write, int) and not isinstance(write, bool) else cached + length
    if mask.dtype != torch.bool or tuple(mask.shape) != (r, length, keys):
        raise ValueError(
            f"mask must be bool [R, L, S] = [{r}, {length}, {keys}], got {mask.dtype} {tuple(mask.shape)}"
        )
