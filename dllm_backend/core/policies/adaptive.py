"""Adaptive rules of SGLang / SDAR / LLaDA2: `eb_sampler` and `low_confidence_dynamic`.

eb_sampler (EB-sampler, arXiv 2505.24857; SGLang `EBSampling`): sort the masked positions by
  entropy, ascending; unmask the longest prefix whose cumulative entropy *before* its last
  element is <= gamma (non-strict, as SGLang), at least one. Entropy of the "dream" proposal's
  filtered probs (SGLang has no temperature there; at T = 0 without filters they agree up to
  the 1e-10 inside Dream's log).
low_confidence_dynamic (SDAR `generate.py`, LLaDA2, TraDo): k from LLaDA's schedule over the
  block's initial masks (at least 1 while masks remain); if at least k masked positions have
  conf > tau (strict) take all of them, else the k most confident. SDAR derives k from the
  block length instead, which equals the initial mask count for a fully masked block.
"""
from __future__ import annotations

import torch

from .base import BlockState, StepOutput
from .params import ParamBatch
from .policy import PolicyBase
from .registry import register
from .sampling import prepare_logits, propose
from .selection import commit, llada_count, open_positions, select_top, sort_desc


@register
class EBSampler(PolicyBase):
    name = "eb_sampler"
    defaults = {"gamma": 0.15}

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        z = prepare_logits(logits, params)
        x0, neg_entropy = propose(z, params, state.rng_offset, mask_id, "dream", "neg_entropy")
        open_ = open_positions(state, mask_id)
        order, rank = sort_desc(neg_entropy, open_)  # lowest entropy first
        ent = (-neg_entropy.to(torch.float64)).masked_fill(~open_, float("inf"))
        ent_sorted = ent.gather(1, order)  # [R, B]
        # entropy of the earlier candidates (an exclusive cumsum, shifted as SGLang does)
        before = torch.cat([torch.zeros_like(ent_sorted[:, :1]), ent_sorted.cumsum(dim=1)[:, :-1]], 1)
        fails = (before > params.gamma.to(torch.float64)[:, None]).to(torch.long)
        n = (fails.cumsum(dim=1) == 0).sum(dim=1).clamp(min=1)  # leading passes, at least one
        return commit(state, x0, open_ & (rank < n[:, None]), mask_id)


@register
class LowConfidenceDynamic(PolicyBase):
    name = "low_confidence_dynamic"
    defaults = {"threshold": 0.95}
    schedule = "llada"

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        x0, conf = propose(prepare_logits(logits, params), params, state.rng_offset, mask_id, "dream")
        open_ = open_positions(state, mask_id)
        remaining = open_.sum(dim=1)
        k = torch.minimum(llada_count(state, remaining).clamp(min=1), remaining)
        high = open_ & (conf > params.threshold[:, None])
        enough = high.sum(dim=1) >= k
        chosen = torch.where(enough[:, None], high, select_top(conf, open_, k))
        return commit(state, x0, chosen, mask_id)
