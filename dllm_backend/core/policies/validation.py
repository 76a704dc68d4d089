"""Checks a `DecodeConfig` and fills in its algorithm's defaults (`validate`)."""
from __future__ import annotations

import dataclasses
import math
from numbers import Integral, Real

from .base import DecodeConfig
from .registry import POLICIES

_INT64_MAX = 2**63 - 1


def _real(name: str, value: object, lo: float, hi: float, lo_open: bool = False) -> float:
    """A finite real number in [lo, hi] (or (lo, hi] with lo_open); bools and strings refused."""
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
    v = float(value)
    below = v <= lo if lo_open else v < lo
    if math.isnan(v) or math.isinf(v) or below or v > hi:
        left = "(" if lo_open else "["
        right = "inf)" if math.isinf(hi) else f"{hi:g}]"
        raise ValueError(f"{name} must be in {left}{lo:g}, {right}, got {value!r}")
    return v


def _int(name: str, value: object, lo: int, hi: int = _INT64_MAX) -> int:
    """An integer in [lo, hi]; bools, floats and strings refused."""
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    v = int(value)
    if v < lo or v > hi:
        raise ValueError(f"{name} must be an integer in [{lo}, {hi}], got {value!r}")
    return v


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return value


_INF = math.inf
# knob -> checker; None stays None for the optional knobs (the algorithm does not use them)
_OPTIONAL = {
    "steps": lambda v: _int("steps", v, 1),
    "threshold": lambda v: _real("threshold", v, 0.0, 1.0),
    "factor": lambda v: _real("factor", v, 0.0, _INF, lo_open=True),
    "gamma": lambda v: _real("gamma", v, 0.0, _INF),
    "low_threshold": lambda v: _real("low_threshold", v, 0.0, 1.0),
    "edit_threshold": lambda v: _real("edit_threshold", v, 0.0, 1.0),
    "max_post_edit_steps": lambda v: _int("max_post_edit_steps", v, 0),
}
_REQUIRED = {
    "alg_temp": lambda v: _real("alg_temp", v, 0.0, _INF),
    "temperature": lambda v: _real("temperature", v, 0.0, _INF),
    "top_p": lambda v: _real("top_p", v, 0.0, 1.0, lo_open=True),
    "top_k": lambda v: _int("top_k", v, 0),
    "seed": lambda v: _int("seed", v, 0),
    "cfg_scale": lambda v: _real("cfg_scale", v, 0.0, _INF),
    "suppress_eos": lambda v: _flag("suppress_eos", v),
    "suppress_eos_confidence": lambda v: _flag("suppress_eos_confidence", v),
}


def validate(cfg: DecodeConfig) -> DecodeConfig:
    """Returns `cfg` with every knob checked and the algorithm's defaults filled in.

    Raises ValueError naming the field, the value and the valid range or choices. Knobs the
    algorithm does not use are checked too but otherwise left alone (they have no effect).
    Idempotent: validating a validated config returns an equal config.
    """
    if not isinstance(cfg, DecodeConfig):
        raise ValueError(f"expected a DecodeConfig, got {type(cfg).__name__}")
    if not isinstance(cfg.algorithm, str):
        raise ValueError(f"algorithm must be a string, got {cfg.algorithm!r}")
    try:
        policy = POLICIES.get(cfg.algorithm)
    except ValueError as e:
        raise ValueError(f"algorithm: {e}") from None
    changes: dict[str, object] = {}
    for name, check in _OPTIONAL.items():
        value = getattr(cfg, name)
        if value is None:
            value = policy.defaults.get(name)
        changes[name] = None if value is None else check(value)
    for name, check in _REQUIRED.items():
        changes[name] = check(getattr(cfg, name))
    return dataclasses.replace(cfg, **changes)
