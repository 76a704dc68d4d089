"""Vectorised building blocks of the policies: which positions are open, ranks, counts, commits.

Ties: every ranking here is a stable descending sort, so among equal scores the lower block
position wins (the references use `torch.topk` / `argmax`, whose tie order is unspecified or
"first index"). Variable per-row counts are applied as `rank < k[:, None]`: no loop over rows,
no host sync.
"""
from __future__ import annotations

import torch

from .base import BlockState, StepOutput

_NEG_INF = float("-inf")
# eligible positions whose score is -inf (e.g. suppressed EOS confidence) still rank above
# ineligible ones: they are moved to this finite floor in the float64 sort key
_FLOOR = -1e300
DREAM_EPS = 1e-3  # Dream's timesteps run linearly from 1 to this value


def open_positions(state: BlockState, mask_id: int) -> torch.Tensor:
    """[R, B] bool: still masked and editable (the positions a step may unmask)."""
    return (state.tokens == mask_id) & state.editable


def sort_desc(score: torch.Tensor, eligible: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stable descending order of the eligible scores, ineligible last.

    score [R, B], eligible [R, B] -> order [R, B] (positions, best first), rank [R, B]
    (each position's place in that order).
    """
    key = torch.where(eligible, score.to(torch.float64).nan_to_num(nan=_FLOOR, neginf=_FLOOR), _NEG_INF)
    order = torch.sort(key, dim=1, descending=True, stable=True).indices
    places = torch.arange(score.shape[1], device=score.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(1, order, places)
    return order, rank


def select_top(score: torch.Tensor, eligible: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """[R, B] bool: the k[r] best eligible positions of each row (k [R] long)."""
    _, rank = sort_desc(score, eligible)
    return eligible & (rank < k[:, None])


def top1(score: torch.Tensor, eligible: torch.Tensor) -> torch.Tensor:
    """[R, B] bool: the single best eligible position per row (none if the row has none)."""
    key = torch.where(eligible, score.to(torch.float64).nan_to_num(nan=_FLOOR, neginf=_FLOOR), _NEG_INF)
    best = key.argmax(dim=1)  # first maximum -> lowest position on ties
    hit = torch.zeros_like(eligible)
    hit.scatter_(1, best[:, None], True)
    return hit & eligible


def llada_count(state: BlockState, remaining: torch.Tensor) -> torch.Tensor:
    """[R] long: LLaDA's tokens for this step: M // S, plus one in the first M % S steps.

    M = state.initial_masks, S = state.num_steps, s = state.step. Past the plan (s >= S) it is
    everything left; never more than `remaining`.
    """
    steps = state.num_steps.clamp(min=1)
    base = state.initial_masks // steps
    extra = (state.step < state.initial_masks % steps).to(base.dtype)
    k = torch.where(state.step >= steps, remaining, base + extra)
    return torch.minimum(k, remaining)


def dream_ratio(state: BlockState) -> torch.Tensor:
    """[R] float64: Dream's 1 - s/t for this step; 1 at the last planned step and beyond.

    t = 1 - i (1 - eps) / S and s the next point of linspace(1, eps, S + 1). The reference
    evaluates it in float32 from `torch.linspace`, whose rounding differs between CPU and CUDA;
    here it is float64, so int(M * ratio) can differ from the reference only when M * ratio
    lies within ~1e-6 of an integer.
    """
    steps = state.num_steps.clamp(min=1).to(torch.float64)
    i = state.step.to(torch.float64)
    delta = (1.0 - DREAM_EPS) / steps
    t = 1.0 - i * delta
    s = t - delta
    ratio = 1.0 - s / t
    return torch.where(i >= steps - 1, torch.ones_like(ratio), ratio)


def dream_count(state: BlockState, remaining: torch.Tensor) -> torch.Tensor:
    """[R] long: int(M_cur * (1 - s/t)), all remaining at the last step (M_cur = `remaining`)."""
    k = torch.floor(remaining.to(torch.float64) * dream_ratio(state)).to(torch.long)
    return torch.minimum(k, remaining)


def commit(state: BlockState, x0: torch.Tensor, chosen: torch.Tensor, mask_id: int) -> StepOutput:
    """Writes x0 where `chosen`; done = no mask left among the editable positions."""
    tokens = torch.where(chosen, x0, state.tokens)
    done = ~((tokens == mask_id) & state.editable).any(dim=1)
    return StepOutput(tokens=tokens, committed=chosen, done=done)
