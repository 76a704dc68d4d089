"""`step`: one denoising step over a batch that may mix algorithms."""
from __future__ import annotations

import torch

from .base import BlockState, StepOutput
from .params import ParamBatch
from .registry import POLICIES
from .state import put_rows, take_rows


def step(logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int) -> StepOutput:
    """Runs each row's algorithm on logits [R, B, V] and returns the new block.

    A single-algorithm batch goes straight to its policy. A mixed batch runs each algorithm on
    its rows, whose index tensors were built with the ParamBatch (no per-step grouping, no
    device reads). The caller then advances the state (see `new_block_state`).
    """
    if logits.dim() != 3 or tuple(logits.shape[:2]) != tuple(state.tokens.shape):
        raise ValueError(
            f"logits must be [R, B, V] matching tokens {tuple(state.tokens.shape)}, "
            f"got {tuple(logits.shape)}"
        )
    if params.num_rows != state.tokens.shape[0]:
        raise ValueError(
            f"the ParamBatch has {params.num_rows} rows but the state has {state.tokens.shape[0]}"
        )
    if not params.groups:
        return POLICIES.get(params.algorithms[0]).step(logits, state, params, mask_id)
    tokens = state.tokens.clone()
    committed = torch.zeros_like(state.tokens, dtype=torch.bool)
    done = torch.zeros(state.tokens.shape[0], dtype=torch.bool, device=state.tokens.device)
    for group in params.groups:
        policy = POLICIES.get(group.algorithm)
        sub = take_rows(state, group.rows, policy.state_keys)
        out = policy.step(logits.index_select(0, group.rows), sub, group.params, mask_id)
        tokens.index_copy_(0, group.rows, out.tokens)
        committed.index_copy_(0, group.rows, out.committed)
        done.index_copy_(0, group.rows, out.done)
        put_rows(state, group.rows, sub, policy.state_keys)
    return StepOutput(tokens=tokens, committed=committed, done=done)
