"""Per-request serving options beyond `DecodeConfig`: block size and cache mode (engine-free).

They travel in `SamplingParams.extra_args` next to the decoding knobs (the OpenAI server's
`vllm_xargs` fills the same dict): `block_size` (full-attention families: the semi-AR
block, default the family's; block-causal families accept only the trained block) and
`cache_mode` (full-attention families: "exact", "prefix" or "dual"; default the server's
`--additional-config '{"dllm_cache_mode": ...}'`, else "exact"). Invalid values raise
ValueError naming them.
"""
from __future__ import annotations

from typing import Any, Mapping

from ..core.reference.generators import CACHE_MODES
from .layouts import Geometry
from .serve_spec import ServeSpec

OPTION_FIELDS: frozenset[str] = frozenset({"block_size", "cache_mode"})


def geometry(params: Any, spec: ServeSpec, prompt_len: int) -> Geometry:
    """The request's `Geometry` from its SamplingParams (max_tokens already capped)."""
    extra: Mapping[str, Any] = params.extra_args or {}
    fam = spec.family
    mode = extra.get("cache_mode", spec.cache_mode)
    if mode not in CACHE_MODES:
        raise ValueError(f"unknown cache_mode {mode!r}; valid choices: {', '.join(CACHE_MODES)}")
    if fam.spec.attention == "block_causal" and mode != "exact":
        raise ValueError(
            f"cache_mode {mode!r} is for full-attention families; {fam.spec.architecture} is "
            f"block-causal and its KV cache is exact: use 'exact'"
        )
    max_tokens = int(params.max_tokens)
    block = extra.get("block_size", fam.block_size)
    if block == 0:  # the family's default is the whole canvas (Dream)
        block = max_tokens
    fam.check_block_size(block)
    cfg_scale = extra.get("cfg_scale", 0.0) or 0.0
    if cfg_scale > 0:
        raise ValueError(
            f"cfg_scale {cfg_scale} is not served by the vLLM adapter: the unconditional pass "
            f"would need a second sequence per request"
        )
    return Geometry(
        prompt_len=prompt_len, max_tokens=max_tokens, block=int(block), cache_mode=mode,
        shift=fam.spec.logit_shift, sub_block=fam.spec.sub_block_size,
    )
