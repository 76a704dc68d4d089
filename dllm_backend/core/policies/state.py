"""Creating a block's `BlockState` and moving row subsets of it in and out (mixed batches)."""
from __future__ import annotations

import torch

from .base import BlockState
from .params import ParamBatch
from .registry import POLICIES


def new_block_state(
    tokens: torch.Tensor,
    editable: torch.Tensor,
    params: ParamBatch,
    mask_id: int,
    num_steps: torch.Tensor | None = None,
    rng_offset: torch.Tensor | None = None,
    *,
    vocab_size: int | None = None,
) -> BlockState:
    """The state of a block about to be denoised.

    tokens [R, B] long (mask_id where undecided), editable [R, B] bool.
    num_steps [R] long: planned steps (fixed schedules); None -> each row's `steps` knob, or
    its initial mask count (one token per step) where that knob is unset.
    rng_offset [R] long: the requests' RNG counters (None -> 0); copied, not aliased.
    vocab_size: lets stateful policies (credit) allocate their [R, B, V] state now rather than
    at the first step (needed to capture the step in a CUDA graph).

    Protocol: after each `policies.step(logits, state, params, mask_id) -> out` the CALLER sets
    `state.tokens = out.tokens` and adds 1 to `state.step` and `state.rng_offset`, until
    `out.done.all()`. `step` itself changes only the policies' own `state.extra` entries.
    """
    if tokens.dim() != 2 or tokens.dtype != torch.long:
        raise ValueError(f"tokens must be a [R, B] long tensor, got {tuple(tokens.shape)} {tokens.dtype}")
    if editable.shape != tokens.shape or editable.dtype != torch.bool:
        raise ValueError(
            f"editable must be a bool tensor shaped like tokens {tuple(tokens.shape)}, "
            f"got {tuple(editable.shape)} {editable.dtype}"
        )
    rows = tokens.shape[0]
    if rows != params.num_rows:
        raise ValueError(f"tokens has {rows} rows but the ParamBatch has {params.num_rows}")
    for name, t in (("num_steps", num_steps), ("rng_offset", rng_offset)):
        if t is not None and tuple(t.shape) != (rows,):
            raise ValueError(f"{name} must have shape ({rows},), got {tuple(t.shape)}")
    initial = ((tokens == mask_id) & editable).sum(dim=1)  # [R]
    if num_steps is None:
        num_steps = torch.where(params.steps > 0, params.steps, initial.clamp(min=1))
    if rng_offset is None:
        rng_offset = torch.zeros(rows, dtype=torch.long, device=tokens.device)
    state = BlockState(
        tokens=tokens,
        editable=editable,
        step=torch.zeros(rows, dtype=torch.long, device=tokens.device),
        num_steps=num_steps.to(device=tokens.device, dtype=torch.long).clone(),
        initial_masks=initial,
        rng_offset=rng_offset.to(device=tokens.device, dtype=torch.long).clone(),
    )
    for name in dict.fromkeys(params.algorithms):
        state.extra.update(POLICIES.get(name).init_state(state, mask_id, vocab_size))
    return state


def take_rows(state: BlockState, rows: torch.Tensor, keys: tuple[str, ...]) -> BlockState:
    """The sub-state of `rows` ([R_g] long), with copies of the `extra` entries named in keys."""
    pick = lambda t: t.index_select(0, rows)  # noqa: E731
    return BlockState(
        tokens=pick(state.tokens),
        editable=pick(state.editable),
        step=pick(state.step),
        num_steps=pick(state.num_steps),
        initial_masks=pick(state.initial_masks),
        rng_offset=pick(state.rng_offset),
        extra={k: pick(state.extra[k]) for k in keys if k in state.extra},
    )


def put_rows(state: BlockState, rows: torch.Tensor, sub: BlockState, keys: tuple[str, ...]) -> None:
    """Writes the sub-state's `extra` entries named in keys back into `state` at `rows`."""
    for k in keys:
        if k not in sub.extra:
            continue
        part = sub.extra[k]
        if k not in state.extra:  # allocated lazily by the policy (e.g. credit)
            full = (state.tokens.shape[0],) + tuple(part.shape[1:])
            state.extra[k] = torch.zeros(full, dtype=part.dtype, device=part.device)
        state.extra[k].index_copy_(0, rows, part)
