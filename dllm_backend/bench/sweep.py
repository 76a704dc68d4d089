"""What a benchmark run varies: algorithm x its knob values x steps per block x block size x cache mode x concurrency.

A `Sweep` is the description (from Python or a JSON dict); `points()` expands it into
validated `SweepPoint`s, each of which becomes one `DecodeConfig` plus the request shape.
`greedy` names plain autoregressive decoding (the AR twin); it takes no knobs.
"""
from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

from ..core.policies import validate
from ..core.policies.base import DecodeConfig
from ..core.reference.generators import CACHE_MODES

GREEDY = "greedy"
# knobs a sweep may vary per algorithm (DecodeConfig fields)
KNOBS: tuple[str, ...] = ("threshold", "factor", "gamma", "low_threshold", "edit_threshold")


@dataclass(frozen=True)
class SweepPoint:
    algorithm: str
    knobs: tuple[tuple[str, float], ...] = ()  # (knob, value) pairs, e.g. (("threshold", 0.9),)
    steps: int | None = None  # denoising steps per block; None = one token per step
    block_size: int | None = None  # None = the checkpoint's default / trained block
    cache_mode: str = "exact"
    concurrency: int = 1

    def __post_init__(self) -> None:
        for name, _ in self.knobs:
            if name not in KNOBS:
                raise ValueError(f"unknown knob {name!r}; valid: {', '.join(KNOBS)}")
        if self.cache_mode not in CACHE_MODES:
            raise ValueError(f"unknown cache_mode {self.cache_mode!r}; valid: {', '.join(CACHE_MODES)}")
        if isinstance(self.concurrency, bool) or not isinstance(self.concurrency, int) or self.concurrency < 1:
            raise ValueError(f"concurrency must be a positive integer, got {self.concurrency!r}")
        if self.algorithm == GREEDY:
            if self.knobs or self.steps is not None or self.block_size is not None:
                raise ValueError(f"{GREEDY!r} decoding takes no knobs, steps or block_size, got {self}")
        else:
            self.decode_config()  # ValueError naming a bad algorithm / value

    def decode_config(self, seed: int = 0) -> DecodeConfig:
        if self.algorithm == GREEDY:
            raise ValueError(f"{GREEDY!r} is autoregressive decoding: it has no DecodeConfig")
        return validate(DecodeConfig(algorithm=self.algorithm, steps=self.steps, seed=seed, **dict(self.knobs)))

    @property
    def label(self) -> str:
        parts = [self.algorithm, *(f"{k}={v:g}" for k, v in self.knobs)]
        if self.steps is not None:
            parts.append(f"steps={self.steps}")
        if self.block_size is not None:
            parts.append(f"block={self.block_size}")
        if self.cache_mode != "exact":
            parts.append(f"cache={self.cache_mode}")
        if self.concurrency != 1:
            parts.append(f"conc={self.concurrency}")
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["knobs"] = dict(self.knobs)
        return d


@dataclass(frozen=True)
class Sweep:
    """algorithms: name -> {knob: [values]} (an empty dict: the algorithm alone); the other
    axes are crossed with every algorithm setting."""

    algorithms: Mapping[str, Mapping[str, Sequence[float]]]
    steps: tuple[int | None, ...] = (None,)
    block_sizes: tuple[int | None, ...] = (None,)
    cache_modes: tuple[str, ...] = ("exact",)
    concurrency: tuple[int, ...] = (1,)
    _points: tuple[SweepPoint, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.algorithms:
            raise ValueError("a sweep needs at least one algorithm")
        for axis in ("steps", "block_sizes", "cache_modes", "concurrency"):
            if not getattr(self, axis):
                raise ValueError(f"sweep axis {axis!r} is empty; give at least one value")
        object.__setattr__(self, "_points", tuple(self._expand()))  # validates every point

    def _expand(self):
        for algorithm, knobs in self.algorithms.items():
            names = sorted(knobs)
            for values in itertools.product(*(knobs[n] for n in names)):
                settings = tuple(zip(names, (float(v) for v in values)))
                if algorithm == GREEDY:
                    yield from (SweepPoint(GREEDY, settings, concurrency=c) for c in self.concurrency)
                    continue
                for steps, block, cache, conc in itertools.product(
                    self.steps, self.block_sizes, self.cache_modes, self.concurrency
                ):
                    yield SweepPoint(algorithm, settings, steps, block, cache, conc)

    def points(self) -> list[SweepPoint]:
        return list(self._points)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Sweep":
        """From a JSON description: {"algorithms": {...}, "steps": [...], "block_sizes": [...],
        "cache_modes": [...], "concurrency": [...]} (every key but "algorithms" optional)."""
        known = {"algorithms", "steps", "block_sizes", "cache_modes", "concurrency"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown sweep keys {unknown}; valid: {', '.join(sorted(known))}")
        axes = {k: tuple(v) for k, v in d.items() if k != "algorithms"}
        return cls(algorithms={a: dict(k) for a, k in d["algorithms"].items()}, **axes)


# The sweep the trained checkpoints are reported with: one token per step vs adaptive rules.
DEFAULT_SWEEP = Sweep(algorithms={
    "low_confidence": {},
    "threshold": {"threshold": [0.9, 0.7, 0.5]},
    "factor": {"factor": [1.0]},
    "eb_sampler": {"gamma": [0.1]},
})
