"""The contract every denoising policy follows: configs, batched state, step output.

A policy looks at the logits of one block per request and decides which positions to
commit (and, for editing policies, which committed tokens to rewrite). Everything is
batched over requests R and block positions B, with per-request parameters as tensors,
so a step has no per-row Python loop and no host sync and can run in a CUDA graph.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Protocol

import torch

if TYPE_CHECKING:
    from .params import ParamBatch


@dataclass(frozen=True)
class DecodeConfig:
    """One request's decoding settings. `None` means "the algorithm's / family's default".

    Validated by `policies.validate(cfg)` (unknown algorithm or out-of-range value ->
    ValueError naming it and the valid choices).
    """

    algorithm: str
    steps: int | None = None  # denoising steps per block; None -> one token per step
    threshold: float | None = None  # tau of threshold-type policies
    factor: float | None = None  # Fast-dLLM factor rule
    gamma: float | None = None  # EB-sampler entropy budget
    low_threshold: float | None = None  # dInfer hierarchical
    edit_threshold: float | None = None  # LLaDA2.1 JointThreshold tau_edit
    max_post_edit_steps: int | None = None  # LLaDA2.1 JointThreshold
    alg_temp: float = 0.0  # Dream: sample positions from softmax(conf / alg_temp)
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = off
    seed: int = 0
    cfg_scale: float = 0.0  # LLaDA classifier-free guidance (handled by the generator)
    suppress_eos: bool = False  # LLaDA logits_eos_inf
    suppress_eos_confidence: bool = False  # LLaDA confidence_eos_eot_inf


@dataclass
class BlockState:
    """Per-request tensors for the block being denoised (R requests, B positions).

    tokens:        [R, B] long   current block; `mask_id` where undecided
    editable:      [R, B] bool   positions the policy may touch (False for prompt tokens
                                 inside the block and for positions past a short last block)
    step:          [R]    long   denoising steps already taken in this block
    num_steps:     [R]    long   steps planned for this block (fixed schedules)
    initial_masks: [R]    long   masked editable positions when the block started
    rng_offset:    [R]    long   counter for the counter-based RNG; the caller adds 1 per step
    extra:         dict          explicit per-request state of stateful policies
                                 (e.g. "credit": [R, B, V]); created by `Policy.init_state`
    """

    tokens: torch.Tensor
    editable: torch.Tensor
    step: torch.Tensor
    num_steps: torch.Tensor
    initial_masks: torch.Tensor
    rng_offset: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass
class StepOutput:
    """tokens: [R, B] long new block; committed: [R, B] bool positions set this step
    (unmasked or edited); done: [R] bool block finished (no mask left and, for editing
    policies, no further edit wanted)."""

    tokens: torch.Tensor
    committed: torch.Tensor
    done: torch.Tensor


class Policy(Protocol):
    """A registered denoising algorithm (see `policies.registry.POLICIES`).

    name:       the `DecodeConfig.algorithm` string it is registered under
    defaults:   values `validate` puts into the config's `None` knobs for this algorithm
    schedule:   "llada" (fixed count per step from the block's initial masks), "dream"
                (count from Dream's timesteps) or "adaptive" (count decided by the logits)
    state_keys: the `BlockState.extra` entries it owns (each [R, ...])
    """

    name: str
    defaults: Mapping[str, float | int]
    schedule: str
    state_keys: tuple[str, ...]

    def init_state(
        self, state: BlockState, mask_id: int, vocab_size: int | None
    ) -> dict[str, torch.Tensor]:
        """Initial `extra` entries for every row of `state` (called once per block)."""
        ...

    def step(
        self,
        logits: torch.Tensor,  # [R, B, V] already shifted for shifted-logit families
        state: BlockState,
        params: "ParamBatch",
        mask_id: int,
    ) -> StepOutput:
        """One denoising step; may update its own `state.extra` entries in place,
        never any other field of `state` (the caller advances step / rng_offset / tokens)."""
        ...
