"""Per-request `DecodeConfig` from vLLM's `SamplingParams` (engine-free: reads attributes only).

Decoding knobs travel in `SamplingParams.extra_args` under the `DecodeConfig` field names
(e.g. `{"algorithm": "low_confidence", "steps": 4}`; the OpenAI server's `vllm_xargs`
fills the same dict). Temperature, top-p, top-k and seed come from the SamplingParams
themselves unless extra_args sets them. Missing algorithm / steps / threshold take the
family's defaults. Invalid values raise ValueError naming the field (`policies.validate`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ..core.families import FamilySpec
from ..core.policies.base import DecodeConfig

DECODE_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(DecodeConfig))


def _from_sampling(params: Any) -> dict[str, Any]:
    """The knobs SamplingParams already carries, in DecodeConfig terms."""
    out: dict[str, Any] = {"temperature": float(params.temperature), "top_p": float(params.top_p)}
    top_k = int(params.top_k or 0)
    out["top_k"] = 0 if top_k < 0 else top_k  # vLLM's -1 means "off", like our 0
    if params.seed is not None:
        out["seed"] = int(params.seed)
    return out


def decode_config(params: Any, spec: FamilySpec) -> DecodeConfig:
    """Builds and validates one request's DecodeConfig from its SamplingParams."""
    from ..core import policies

    extra: Mapping[str, Any] = params.extra_args or {}
    knobs = _from_sampling(params)
    knobs.update({k: v for k, v in extra.items() if k in DECODE_FIELDS})
    if knobs.get("algorithm") is None:
        knobs["algorithm"] = spec.default_algorithm
        # the family's published defaults belong to its default algorithm only
        knobs.setdefault("steps", spec.default_steps)
        knobs.setdefault("threshold", spec.default_threshold)
    elif knobs.get("threshold") is None and knobs["algorithm"] == spec.default_algorithm:
        knobs["threshold"] = spec.default_threshold
    return policies.validate(DecodeConfig(**knobs))
