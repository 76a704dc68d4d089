"""One request's settings as the executor uses them: policy config and block geometry (engine-free).

The values come from `ServedDecoding.request` (`decode_params`), the function the front
end already validated the request with (server defaults, `extra_args` / `vllm_xargs`
knobs, `block_size`, `cache_mode`), so the scheduler, the runner and the front end agree.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.policies.base import DecodeConfig
from .layouts import Geometry
from .serve_spec import ServeSpec


@dataclass(frozen=True)
class RequestSettings:
    geometry: Geometry
    decode: DecodeConfig


def settings(params: Any, spec: ServeSpec, prompt_len: int) -> RequestSettings:
    """The request's settings from its SamplingParams (max_tokens already capped: Dream's
    default block is the whole canvas)."""
    req = spec.served.request(params)
    fam = spec.family
    geo = Geometry(
        prompt_len=prompt_len, max_tokens=int(params.max_tokens), block=req.block_size,
        cache_mode=req.cache_mode, shift=fam.spec.logit_shift, sub_block=fam.spec.sub_block_size,
    )
    return RequestSettings(geometry=geo, decode=req.decode)
