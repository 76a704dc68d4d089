"""Per-request denoising state kept by the runner, stacked into one batch per step (engine-free).

The core policies work on a batch `BlockState` of R requests; the runner keeps one R=1
state per request between steps (requests join and leave the batch every step) and
stacks the rows of the requests denoising in a step, so one `policies.step` call serves
the whole batch.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core import policies
from ..core.policies.base import BlockState, DecodeConfig


@dataclass
class RequestBlock:
    """One request's block being denoised: `start` is its first position, `state` R=1 rows."""

    start: int
    state: BlockState
    decode: DecodeConfig


def start_block(
    start: int, tokens: torch.Tensor, editable: torch.Tensor, decode: DecodeConfig,
    eos_ids: tuple[int, ...], mask_id: int, rng_offset: int,
) -> RequestBlock:
    """A fresh block. tokens / editable: [1, B]. Mirrors the reference `denoise_block`:
    `decode.steps` steps, else one per masked editable position; the RNG offset continues
    the request's step count."""
    masks = int(((tokens == mask_id) & editable).sum())
    num_steps = torch.tensor([decode.steps or max(masks, 1)], dtype=torch.long)
    offset = torch.tensor([rng_offset], dtype=torch.long)
    params = policies.ParamBatch.from_configs([decode], eos_ids, tokens.device)
    state = policies.new_block_state(tokens, editable, params, mask_id, num_steps, offset)
    return RequestBlock(start=start, state=state, decode=decode)


def stack(blocks: list[RequestBlock]) -> BlockState:
    """R=1 states -> one [R, ...] state (every block has the same length B)."""
    states = [b.state for b in blocks]
    extra_keys = states[0].extra.keys()
    return BlockState(
        tokens=torch.cat([s.tokens for s in states]),
        editable=torch.cat([s.editable for s in states]),
        step=torch.cat([s.step for s in states]),
        num_steps=torch.cat([s.num_steps for s in states]),
        initial_masks=torch.cat([s.initial_masks for s in states]),
        rng_offset=torch.cat([s.rng_offset for s in states]),
        extra={k: torch.cat([s.extra[k] for s in states]) for k in extra_keys},
    )


def row(state: BlockState, r: int) -> BlockState:
    """Row r of a batch state as an R=1 state."""
    sl = slice(r, r + 1)
    return BlockState(
        tokens=state.tokens[sl], editable=state.editable[sl], step=state.step[sl],
        num_steps=state.num_steps[sl], initial_masks=state.initial_masks[sl],
        rng_offset=state.rng_offset[sl], extra={k: v[sl] for k, v in state.extra.items()},
    )
