"""Reference generation loops, one per family kind, behind a registry.

`generate(loaded, prompt_ids, max_tokens, decode, ...)` picks the family's generator
(`FamilySpec.generator`) and returns a `GenerationResult`.
"""
from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ...limits import Limits
from ...registry import Registry
from ...policies.base import DecodeConfig
from ..loading import LoadedModel

CacheMode = Literal["exact", "prefix", "dual"]
CACHE_MODES: tuple[str, ...] = ("exact", "prefix", "dual")


@dataclass(frozen=True)
class GenerationRequest:
    prompt_ids: tuple[int, ...]
    max_tokens: int
    decode: DecodeConfig
    block_size: int | None = None  # None -> the family's default / trained block
    cache_mode: CacheMode = "exact"  # full-attention families only; "prefix"/"dual" approximate


@dataclass
class GenerationResult:
    """token_ids: generated ids, cut after the first stop id (kept) or at max_tokens.
    nfe: model forwards run; steps: denoising steps; tokens_per_step: committed per step."""

    token_ids: list[int]
    finish_reason: Literal["stop", "length"]
    nfe: int
    steps: int
    tokens_per_step: list[int] = field(default_factory=list)


class Generator(Protocol):
    def __call__(self, loaded: LoadedModel, request: GenerationRequest) -> GenerationResult: ...


# name -> "module:function", imported on first use
GENERATORS: Registry[str] = Registry("reference generator")
GENERATORS.add("full_attention", f"{__name__}.full_attention:generate")
GENERATORS.add("block_diffusion", f"{__name__}.block_diffusion:generate")
GENERATORS.add("fast_dllm_v2", f"{__name__}.fast_dllm_v2:generate")


def get_generator(name: str) -> Generator:
    module, _, fn = GENERATORS.get(name).partition(":")
    return getattr(importlib.import_module(module), fn)


def validate_request(
    loaded: LoadedModel, request: GenerationRequest, limits: Limits | None = None
) -> GenerationRequest:
    """Checks a request against the checkpoint; returns it with defaults filled in.

    limits: the bounds on block size and steps (default: blocks up to the model's maximum
    length, `DEFAULT_MAX_STEPS` steps per block, as the vLLM adapter's defaults).
    Raises ValueError naming the offending value.
    """
    from ...policies import validate

    fam = loaded.family
    limits = limits or Limits(max_block_size=fam.max_len)
    if not isinstance(request.max_tokens, int) or isinstance(request.max_tokens, bool) or request.max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {request.max_tokens!r}")
    if not request.prompt_ids:
        raise ValueError("the prompt is empty: at least one prompt token is needed")
    if request.cache_mode not in CACHE_MODES:
        raise ValueError(f"unknown cache_mode {request.cache_mode!r}; valid choices: {', '.join(CACHE_MODES)}")
    if fam.spec.attention == "block_causal" and request.cache_mode != "exact":
        raise ValueError(
            f"cache_mode {request.cache_mode!r} is for full-attention families; "
            f"{fam.spec.architecture} is block-causal and its KV cache is exact: use 'exact'"
        )
    block = request.block_size if request.block_size is not None else fam.block_size
    if block == 0:  # the family's default is the whole canvas (Dream), up to the largest block
        block = min(request.max_tokens, limits.max_block_size)
    fam.check_block_size(block)
    decode = validate(DecodeConfig(**fam.spec.decode_knobs(dataclasses.asdict(request.decode))))
    limits.check(decode, block)
    total = len(request.prompt_ids) + request.max_tokens
    if fam.spec.block_alignment == "absolute":
        total = -(-total // block) * block
    if total > fam.max_len:
        raise ValueError(
            f"prompt of {len(request.prompt_ids)} tokens + max_tokens {request.max_tokens} needs "
            f"{total} positions, more than the model's maximum length {fam.max_len}"
        )
    return dataclasses.replace(request, decode=decode, block_size=block)


def generate(loaded: LoadedModel, request: GenerationRequest) -> GenerationResult:
    """Validates the request against the checkpoint and runs the family's generator."""
    request = validate_request(loaded, request)
    return get_generator(loaded.family.spec.generator)(loaded, request)
