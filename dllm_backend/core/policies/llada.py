"""LLaDA's fixed-schedule remasking (`generate.py`): `low_confidence` and `random`.

With M masked positions when the block starts and S = num_steps, step s unmasks M // S
positions plus one in the first M % S steps (8 masks, 3 steps -> 3, 3, 2); S defaults to M,
one token per step. x0 comes from the "llada" proposal (Gumbel-max at temperature T).
"""
from __future__ import annotations

import torch

from .base import BlockState, StepOutput
from .params import ParamBatch
from .policy import PolicyBase
from .registry import register
from .rng import STREAM_POSITIONS, position_uniform
from .sampling import prepare_logits, propose, suppress_eos_confidence
from .selection import commit, llada_count, open_positions, select_top


@register
class LowConfidence(PolicyBase):
    """Unmask the k most confident masked positions, conf = softmax(clean logits)[x0]."""

    name = "low_confidence"
    schedule = "llada"

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        x0, conf = propose(prepare_logits(logits, params), params, state.rng_offset, mask_id, "llada")
        open_ = open_positions(state, mask_id)
        k = llada_count(state, open_.sum(dim=1))
        return commit(state, x0, select_top(conf, open_, k), mask_id)


@register
class RandomRemasking(PolicyBase):
    """Unmask k masked positions chosen uniformly at random (conf ~ U(0, 1) per position)."""

    name = "random"
    schedule = "llada"

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        x0, _ = propose(prepare_logits(logits, params), params, state.rng_offset, mask_id, "llada")
        u = position_uniform(params.seed, state.rng_offset, STREAM_POSITIONS, state.tokens.shape[1])
        conf = suppress_eos_confidence(u, x0, params)  # [R, B] float64
        open_ = open_positions(state, mask_id)
        k = llada_count(state, open_.sum(dim=1))
        return commit(state, x0, select_top(conf, open_, k), mask_id)
