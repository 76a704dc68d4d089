"""Denoising policies: validated configs, per-request parameter batches, one batched `step`.

Usage (the caller owns the loop):

    params = ParamBatch.from_configs([validate(cfg) for cfg in configs], eos_ids, device)
    state = new_block_state(tokens, editable, params, mask_id)
    while True:
        out = step(logits_fn(state.tokens), state, params, mask_id)
        state.tokens = out.tokens; state.step += 1; state.rng_offset += 1
        if out.done.all(): break

Algorithms (registered in `POLICIES`): low_confidence, random (LLaDA); maskgit_plus,
topk_margin, entropy, origin (Dream); threshold, factor (Fast-dLLM); eb_sampler;
hierarchical, credit (dInfer); low_confidence_dynamic (SDAR / LLaDA2); joint_threshold
(LLaDA2.1, with editing). See each module's docstring for the exact rule.
"""
from __future__ import annotations

# the algorithm modules register themselves on import
from . import adaptive, dinfer, dream, fast_dllm, joint_threshold, llada  # noqa: F401
from .base import BlockState, DecodeConfig, Policy, StepOutput
from .dispatch import step
from .params import ParamBatch, ParamGroup
from .registry import POLICIES
from .state import new_block_state
from .validation import validate

__all__ = [
    "POLICIES",
    "BlockState",
    "DecodeConfig",
    "ParamBatch",
    "ParamGroup",
    "Policy",
    "StepOutput",
    "new_block_state",
    "step",
    "validate",
]
