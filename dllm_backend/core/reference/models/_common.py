"""Plumbing shared by the reference networks of this folder.

- `init_normal_`: HF `_init_weights`-style random init driven by one `torch.Generator`;
  `kaiming_uniform_` for weights the originals leave at nn.Linear's default.
- `check_inputs` / `check_supported`: the forward contract's checks and the config features
  the networks do not implement, as `ValueError`s naming the value.
- `padding_index`, `head_dim_of`: small config readers.
- `FusedWeightRMSNorm`: SDAR's norm (flash-attn's fused kernel applies the weight in float32).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..kv_cache import CacheWrite, KVCache
from ..layers import RMSNorm


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


@torch.no_grad()
def kaiming_uniform_(weight: torch.Tensor, generator: torch.Generator) -> None:
    """`nn.init.kaiming_uniform_(w, a=sqrt(5))` (nn.Linear's default), drawn from `generator`."""
    bound = 1.0 / math.sqrt(weight.shape[1])  # gain sqrt(1/3) * sqrt(3 / fan_in)
    weight.uniform_(-bound, bound, generator=generator)


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


def head_dim_of(config) -> int:
    """The config's `head_dim`, or hidden / heads where the family has no such key (Qwen2)."""
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


class FusedWeightRMSNorm(RMSNorm):
    """RMSNorm as flash-attn's fused `rms_norm_fn`: the weight multiplies in float32, then one cast.

    SDAR's modeling code always normalises with that kernel (HF's form casts before the
    weight); the two differ only below float32.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return (h * self.weight.float()).to(x.dtype)
