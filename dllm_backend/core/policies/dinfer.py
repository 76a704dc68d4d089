"""dInfer's decoders (`parallel_strategy.py`): `hierarchical` and `credit`.

hierarchical (`HierarchyDecoder`): split the masked positions into contiguous runs; in each run
  take its most confident position if conf > low_threshold; add every position with
  conf > threshold; always add the global best (all comparisons strict, as dInfer). A run's
  ties go to its lowest position (dInfer keeps every tied maximum). Proposal "llada".
credit (`CreditThresholdParallelDecoder`): a per-block matrix C [R, B, V] (zero at block
  start) decays by 0.8 each step and gains p_top1 ** 0.2 at each masked position's top-1
  token; decoding then uses fused logits = logits + 0.7 * log(C + 1) with dInfer's threshold
  rule: conf >= min(max_conf - 1e-5, tau) among masked positions (so at least the best).
  C lives in `state.extra["credit"]`; it is allocated at the first step when
  `new_block_state` was not given the vocabulary size.
"""
from __future__ import annotations

import torch

from .base import BlockState, StepOutput
from .params import ParamBatch
from .policy import PolicyBase
from .registry import register
from .sampling import prepare_logits, propose
from .selection import commit, open_positions, top1

CREDIT_DECAY = 0.8
CREDIT_BOOST = 0.2
CREDIT_ALPHA = 0.7


def run_leaders(conf: torch.Tensor, open_: torch.Tensor) -> torch.Tensor:
    """[R, B] bool: the first most confident position of each contiguous run of open positions."""
    rows, width = open_.shape
    prev = torch.cat([torch.zeros_like(open_[:, :1]), open_[:, :-1]], dim=1)
    starts = open_ & ~prev
    run = torch.cumsum(starts.to(torch.long), dim=1) - 1  # run index of each open position
    run = torch.where(open_, run, width)  # closed positions go to a spare bucket
    key = torch.where(open_, conf.to(torch.float64).nan_to_num(nan=-1e300, neginf=-1e300), -float("inf"))
    best = torch.full((rows, width + 1), -float("inf"), dtype=torch.float64, device=conf.device)
    best = best.scatter_reduce(1, run, key, reduce="amax", include_self=True)
    is_best = open_ & (key == best.gather(1, run))
    pos = torch.arange(width, device=conf.device).expand(rows, width)
    first = torch.full((rows, width + 1), width, dtype=torch.long, device=conf.device)
    first = first.scatter_reduce(1, run, torch.where(is_best, pos, width), reduce="amin", include_self=True)
    return open_ & (pos == first.gather(1, run))


@register
class Hierarchical(PolicyBase):
    name = "hierarchical"
    defaults = {"threshold": 0.92, "low_threshold": 0.62}

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        x0, conf = propose(prepare_logits(logits, params), params, state.rng_offset, mask_id, "llada")
        open_ = open_positions(state, mask_id)
        chosen = run_leaders(conf, open_) & (conf > params.low_threshold[:, None])
        chosen |= open_ & (conf > params.threshold[:, None])
        chosen |= top1(conf, open_)
        return commit(state, x0, chosen, mask_id)


@register
class Credit(PolicyBase):
    name = "credit"
    defaults = {"threshold": 0.9}
    state_keys = ("credit",)

    def init_state(
        self, state: BlockState, mask_id: int, vocab_size: int | None
    ) -> dict[str, torch.Tensor]:
        if vocab_size is None:
            return {}
        rows, width = state.tokens.shape
        return {"credit": torch.zeros(rows, width, vocab_size, device=state.tokens.device)}

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        z = prepare_logits(logits, params)
        credit = state.extra.get("credit")
        if credit is None or credit.shape != z.shape:
            credit = state.extra["credit"] = torch.zeros_like(z)
        open_ = open_positions(state, mask_id)
        top_p, top_id = torch.softmax(z, dim=-1).max(dim=-1)  # [R, B]
        credit.mul_(CREDIT_DECAY)  # a no-op at the first step: C starts at zero
        gain = top_p.pow(CREDIT_BOOST) * open_.to(top_p.dtype)
        credit.scatter_add_(2, top_id[..., None], gain[..., None])
        fused = z + CREDIT_ALPHA * torch.log(credit + 1)
        x0, conf = propose(fused, params, state.rng_offset, mask_id, "llada")
        best = torch.where(open_, conf, -float("inf")).max(dim=1).values  # [R]
        bar = torch.minimum((best - 1e-5).clamp(min=-1000.0), params.threshold)
        chosen = (open_ & (conf >= bar[:, None])) | top1(conf, open_)
        return commit(state, x0, chosen, mask_id)
