"""Fast-dLLM's adaptive rules (arXiv 2505.22618): `threshold` and `factor`.

threshold: every masked position with conf > tau, and always the single most confident one.
  Strict, as Fast-dLLM v2's samplers (`x1_p > threshold`) and SGLang do; Fast-dLLM v1's LLaDA
  code drops a candidate only when conf < tau, i.e. also accepts conf == tau. Proposal "dream"
  (v2: top_p / temperature, conf from the filtered probs); at T = 0 without top_p / top_k this
  is exactly v1's argmax and softmax confidence.
factor: with the masked confidences sorted c_1 >= c_2 >= ..., unmask the largest n such that
  c_i >= 1 - f / (i + 1) for every 2 <= i <= n (c_1 always). Proposal "llada" (v1 only).
  NOTE: the reference loop also takes the last candidate when only *it* fails (an off-by-one
  in its `top_i == len - 1` branch); this implementation follows the rule as stated above.
"""
from __future__ import annotations

import torch

from .base import BlockState, StepOutput
from .params import ParamBatch
from .policy import PolicyBase
from .registry import register
from .sampling import prepare_logits, propose
from .selection import commit, open_positions, sort_desc, top1


@register
class Threshold(PolicyBase):
    name = "threshold"
    defaults = {"threshold": 0.9}

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        x0, conf = propose(prepare_logits(logits, params), params, state.rng_offset, mask_id, "dream")
        open_ = open_positions(state, mask_id)
        chosen = (open_ & (conf > params.threshold[:, None])) | top1(conf, open_)
        return commit(state, x0, chosen, mask_id)


@register
class Factor(PolicyBase):
    name = "factor"
    defaults = {"factor": 1.0}

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        x0, conf = propose(prepare_logits(logits, params), params, state.rng_offset, mask_id, "llada")
        open_ = open_positions(state, mask_id)
        _, rank = sort_desc(conf, open_)  # [R, B], 0 = most confident
        # the candidate at (0-based) rank j needs c >= 1 - f / (j + 2); float64 like the reference
        bar = 1.0 - params.factor.to(torch.float64)[:, None] / (rank + 2).to(torch.float64)
        passes = (conf.to(torch.float64) >= bar) | (rank == 0)
        width = state.tokens.shape[1]
        first_fail = torch.where(open_ & ~passes, rank, width).min(dim=1).values  # [R]
        return commit(state, x0, open_ & (rank < first_fail[:, None]), mask_id)
