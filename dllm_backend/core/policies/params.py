"""Per-request decoding parameters of a batch as tensors (`ParamBatch`), built once per batch."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .base import DecodeConfig
from .validation import validate


@dataclass(frozen=True)
class ParamGroup:
    """The rows of a mixed batch that use one algorithm.

    rows: [R_g] long indices into the batch (on the batch's device); params: those rows only.
    """

    algorithm: str
    rows: torch.Tensor
    params: "ParamBatch"


@dataclass(frozen=True)
class ParamBatch:
    """Every numeric knob of R requests as a [R] tensor, plus host-side facts about the batch.

    Knobs an algorithm does not use hold 0. `steps` 0 means "one token per step" (the block's
    initial mask count). Thresholds are float32 so comparisons with float32 confidences round
    the way the reference code's `tensor > python_float` does; temperature is float64 because
    LLaDA's Gumbel noise is float64.

    The host-side fields (`algorithms`, `groups`, `any_*`, `max_top_k`) are fixed when the batch
    is built, so `step` picks its code path without reading device data.
    """

    algorithms: tuple[str, ...]  # host: algorithm of each row
    threshold: torch.Tensor  # [R] float32
    factor: torch.Tensor  # [R] float32
    gamma: torch.Tensor  # [R] float32
    low_threshold: torch.Tensor  # [R] float32
    edit_threshold: torch.Tensor  # [R] float32
    max_post_edit_steps: torch.Tensor  # [R] long
    steps: torch.Tensor  # [R] long, 0 = one token per step
    alg_temp: torch.Tensor  # [R] float32
    temperature: torch.Tensor  # [R] float64
    top_p: torch.Tensor  # [R] float32
    top_k: torch.Tensor  # [R] long, 0 = off
    seed: torch.Tensor  # [R] long
    cfg_scale: torch.Tensor  # [R] float32
    suppress_eos: torch.Tensor  # [R] bool
    suppress_eos_confidence: torch.Tensor  # [R] bool
    eos_ids: torch.Tensor  # [E] long
    any_sampling: bool  # some row has temperature > 0
    any_top_p: bool  # some row has top_p < 1
    max_top_k: int  # largest top_k (0: no row filters by top_k)
    any_alg_temp: bool  # some row has alg_temp > 0
    any_suppress_eos: bool
    any_suppress_eos_confidence: bool
    groups: tuple[ParamGroup, ...]  # one per algorithm when the batch mixes several, else ()

    @property
    def num_rows(self) -> int:
        return len(self.algorithms)

    @property
    def device(self) -> torch.device:
        return self.threshold.device

    @classmethod
    def from_configs(
        cls,
        configs: Sequence[DecodeConfig],
        eos_ids: Sequence[int],
        device: torch.device | str = "cpu",
    ) -> "ParamBatch":
        """Builds the batch from one config per request (validated here if not already).

        eos_ids: the model's EOS / end-of-turn ids (for `suppress_eos*`), shared by all rows.
        """
        if len(configs) == 0:
            raise ValueError("a ParamBatch needs at least one DecodeConfig, got none")
        eos = [int(e) for e in eos_ids]
        if any(e < 0 for e in eos):
            raise ValueError(f"eos_ids must be non-negative token ids, got {list(eos_ids)!r}")
        cfgs = [validate(c) for c in configs]
        return cls._build(cfgs, eos, torch.device(device), with_groups=True)

    @classmethod
    def _build(
        cls, cfgs: list[DecodeConfig], eos: list[int], device: torch.device, with_groups: bool
    ) -> "ParamBatch":
        def col(name: str, dtype: torch.dtype) -> torch.Tensor:
            values = [getattr(c, name) for c in cfgs]
            return torch.tensor([0 if v is None else v for v in values], dtype=dtype, device=device)

        names = tuple(c.algorithm for c in cfgs)
        groups: tuple[ParamGroup, ...] = ()
        distinct = list(dict.fromkeys(names))
        if with_groups and len(distinct) > 1:
            groups = tuple(
                ParamGroup(
                    algorithm=name,
                    rows=torch.tensor(
                        [i for i, n in enumerate(names) if n == name], dtype=torch.long, device=device
                    ),
                    params=cls._build([c for c in cfgs if c.algorithm == name], eos, device, False),
                )
                for name in distinct
            )
        return cls(
            algorithms=names,
            threshold=col("threshold", torch.float32),
            factor=col("factor", torch.float32),
            gamma=col("gamma", torch.float32),
            low_threshold=col("low_threshold", torch.float32),
            edit_threshold=col("edit_threshold", torch.float32),
            max_post_edit_steps=col("max_post_edit_steps", torch.long),
            steps=col("steps", torch.long),
            alg_temp=col("alg_temp", torch.float32),
            temperature=col("temperature", torch.float64),
            top_p=col("top_p", torch.float32),
            top_k=col("top_k", torch.long),
            seed=col("seed", torch.long),
            cfg_scale=col("cfg_scale", torch.float32),
            suppress_eos=col("suppress_eos", torch.bool),
            suppress_eos_confidence=col("suppress_eos_confidence", torch.bool),
            eos_ids=torch.tensor(eos, dtype=torch.long, device=device),
            any_sampling=any(c.temperature > 0 for c in cfgs),
            any_top_p=any(c.top_p < 1 for c in cfgs),
            max_top_k=max(c.top_k for c in cfgs),
            any_alg_temp=any(c.alg_temp > 0 for c in cfgs),
            any_suppress_eos=bool(eos) and any(c.suppress_eos for c in cfgs),
            any_suppress_eos_confidence=bool(eos) and any(c.suppress_eos_confidence for c in cfgs),
            groups=groups,
        )
