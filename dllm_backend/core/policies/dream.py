"""Dream's remasking (`diffusion_generate`): `maskgit_plus`, `topk_margin`, `entropy`, `origin`.

Timesteps t = linspace(1, 1e-3, S + 1). At step i (t = t_i, s = t_{i+1}) with M_cur masked
positions, k = int(M_cur * (1 - s/t)) positions are unmasked, all remaining at the last step.
The three greedy algorithms take the k best by their confidence (p[x0], p1 - p2, negative
entropy of the filtered probs); with alg_temp > 0 the k positions are instead sampled without
replacement from softmax(conf / alg_temp) (Gumbel-top-k, the same distribution as the
reference's `multinomial`). `origin` reveals each masked position independently with
probability 1 - s/t. Note the reference's first step with S == M unmasks int(0.999) = 0
tokens; this is kept (the last step then takes two).
"""
from __future__ import annotations

from typing import ClassVar

import torch

from .base import BlockState, StepOutput
from .params import ParamBatch
from .policy import PolicyBase
from .registry import register
from .rng import STREAM_ALG_TEMP, STREAM_REVEAL, gumbel, position_uniform
from .sampling import prepare_logits, propose
from .selection import commit, dream_count, dream_ratio, open_positions, select_top


class _DreamTopK(PolicyBase):
    schedule = "dream"
    confidence: ClassVar[str] = "prob"

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        z = prepare_logits(logits, params)
        x0, conf = propose(z, params, state.rng_offset, mask_id, "dream", self.confidence)
        open_ = open_positions(state, mask_id)
        k = dream_count(state, open_.sum(dim=1))
        score = conf.to(torch.float64)
        if params.any_alg_temp:
            use = params.alg_temp > 0  # [R]
            temp = torch.where(use, params.alg_temp, torch.ones_like(params.alg_temp)).to(torch.float64)
            u = position_uniform(params.seed, state.rng_offset, STREAM_ALG_TEMP, state.tokens.shape[1])
            sampled = score / temp[:, None] + gumbel(u)  # [R, B]
            score = torch.where(use[:, None], sampled, score)
        return commit(state, x0, select_top(score, open_, k), mask_id)


@register
class MaskGitPlus(_DreamTopK):
    name = "maskgit_plus"
    confidence = "prob"


@register
class TopKMargin(_DreamTopK):
    name = "topk_margin"
    confidence = "margin"


@register
class Entropy(_DreamTopK):
    name = "entropy"
    confidence = "neg_entropy"


@register
class Origin(PolicyBase):
    """Each masked position is revealed with probability 1 - s/t (all at the last step)."""

    name = "origin"
    schedule = "dream"

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        x0, _ = propose(prepare_logits(logits, params), params, state.rng_offset, mask_id, "dream")
        u = position_uniform(params.seed, state.rng_offset, STREAM_REVEAL, state.tokens.shape[1])
        reveal = u < dream_ratio(state)[:, None]  # u < 1 always: the last step reveals all
        return commit(state, x0, open_positions(state, mask_id) & reveal, mask_id)
