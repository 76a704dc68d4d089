"""Decoding settings of the SGLang algorithms: server YAML knobs, request sampling, per-request overrides.

Three layers, later wins, validated by the core (`policies.validate`):
1. `--dllm-algorithm-config` YAML: any `DecodeConfig` knob (threshold, steps, ...), plus the
   adapter's own keys `schedule_over_block` and `eos_ids` and SGLang's `block_size` /
   `capture_input_preparation` (read by SGLang itself).
2. The request's sampling parameters: temperature, top_p, top_k. SGLang rewrites a greedy
   request (temperature 0) to temperature 1, top_k 1; that is mapped back to the core's
   temperature 0 so that confidences come from the unfiltered softmax, as the references do.
3. `custom_params["dllm"]` of the request: a mapping of `DecodeConfig` knobs (seed included)
   for this request only.
Nothing here imports sglang.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ..core.policies import DecodeConfig, validate

# knobs a YAML file or a request may set (cfg_scale needs a second forward SGLang does not run)
KNOBS: tuple[str, ...] = tuple(
    f.name for f in dataclasses.fields(DecodeConfig) if f.name not in ("algorithm", "cfg_scale")
)
SGLANG_KEYS = ("block_size", "capture_input_preparation")  # read by SGLang, ignored here
ADAPTER_KEYS = ("schedule_over_block", "eos_ids")
CUSTOM_PARAMS_KEY = "dllm"
TOP_K_OFF_FROM = 1 << 30  # SGLang's TOP_K_ALL: "whole vocabulary"
_INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class ServerSettings:
    """One server's settings for one core policy.

    base: the validated YAML knobs; schedule_over_block: fixed-step schedules spread the block
    length (SDAR / LLaDA2 loops: True) or the block's masked positions (LLaDA's loop: False);
    eos_ids: stop ids for `suppress_eos*` (empty: those knobs have no effect).
    """

    base: DecodeConfig
    schedule_over_block: bool
    eos_ids: tuple[int, ...]


def server_settings(policy: str, algorithm_config: Mapping[str, Any] | None) -> ServerSettings:
    """Reads an `--dllm-algorithm-config` mapping; ValueError naming an unknown key or bad value."""
    cfg = dict(algorithm_config or {})
    allowed = set(KNOBS) | set(SGLANG_KEYS) | set(ADAPTER_KEYS)
    unknown = sorted(k for k in cfg if k not in allowed)
    if unknown:
        raise ValueError(
            f"unknown dLLM algorithm config key(s) {unknown} for {policy!r}; valid keys: {', '.join(sorted(allowed))}"
        )
    over_block = cfg.get("schedule_over_block", True)
    if not isinstance(over_block, bool):
        raise ValueError(f"schedule_over_block must be true or false, got {over_block!r}")
    eos = cfg.get("eos_ids", ())
    if not isinstance(eos, (list, tuple)) or any(isinstance(e, bool) or not isinstance(e, int) or e < 0 for e in eos):
        raise ValueError(f"eos_ids must be a list of non-negative token ids, got {eos!r}")
    knobs = {k: cfg[k] for k in KNOBS if k in cfg}
    base = validate(DecodeConfig(algorithm=policy, **knobs))
    return ServerSettings(base=base, schedule_over_block=over_block, eos_ids=tuple(eos))


def request_overrides(custom_params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The `custom_params["dllm"]` knobs of one request (empty when absent); ValueError if malformed."""
    if not custom_params or CUSTOM_PARAMS_KEY not in custom_params:
        return {}
    over = custom_params[CUSTOM_PARAMS_KEY]
    if not isinstance(over, Mapping):
        raise ValueError(f"custom_params[{CUSTOM_PARAMS_KEY!r}] must be a mapping, got {over!r}")
    unknown = sorted(k for k in over if k not in KNOBS)
    if unknown:
        raise ValueError(
            f"unknown per-request dLLM knob(s) {unknown}; valid keys: {', '.join(KNOBS)}"
        )
    return dict(over)


def sampling_knobs(temperature: float, top_p: float, top_k: int, vocab_size: int) -> dict[str, Any]:
    """SGLang's normalised sampling parameters of one row -> the core's temperature / top_p / top_k."""
    if top_k == 1:  # SGLang's encoding of greedy decoding (temperature 0)
        return {"temperature": 0.0, "top_p": 1.0, "top_k": 0}
    k = 0 if top_k <= 0 or top_k >= min(TOP_K_OFF_FROM, vocab_size) else int(top_k)
    return {"temperature": float(temperature), "top_p": float(top_p), "top_k": k}


def row_config(
    settings: ServerSettings,
    sampling: Mapping[str, Any],
    overrides: Mapping[str, Any],
    seed: int | None = None,
) -> DecodeConfig:
    """One request's validated config: YAML knobs < request sampling < seed < custom_params."""
    changes: dict[str, Any] = dict(sampling)
    if seed is not None:
        changes["seed"] = int(seed) & _INT64_MAX  # SGLang seeds may be negative; ours are not
    changes.update(overrides)
    return validate(dataclasses.replace(settings.base, **changes))
