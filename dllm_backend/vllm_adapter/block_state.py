"""Per-request denoising state kept by the runner, stacked into one batch per step (engine-free).

The core policies work on a batch `BlockState` of R requests; the runner keeps one R=1
state per request between steps (requests join and leave the batch every step) and
stacks the rows of the requests denoising in a step, so one `policies.step` call serves
all rows of one width. A request's block may be denoised in several windows one after
the other (Fast-dLLM v2 sub-blocks); the policy state covers the current window only.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core import policies
from ..core.policies.base import BlockState, DecodeConfig


@dataclass
class RequestBlock:
    """One request's block [lo, hi): `tokens` [1, hi - lo] (mask id where undecided),
    `committed` the request's committed tokens when the block started (positions below
    stay), `first_step` the request's policy steps before it (the RNG counter a restart
    resumes from), the policy window [w_lo, w_hi) and its R=1 `state`."""

    lo: int
    hi: int
    tokens: torch.Tensor
    committed: int
    decode: DecodeConfig
    first_step: int = 0
    w_lo: int = 0
    w_hi: int = 0
    state: BlockState | None = None

    def window_tokens(self) -> torch.Tensor:
        return self.tokens[:, self.w_lo - self.lo : self.w_hi - self.lo]  # [1, W]


def start_window(
    block: RequestBlock, w_lo: int, w_hi: int, eos_ids: tuple[int, ...], mask_id: int,
    rng_offset: int, schedule_len: int | None,
) -> None:
    """Starts the policy on [w_lo, w_hi). Mirrors the reference `denoise_block`: `decode.steps`
    steps, else one per scheduled position (`schedule_len`, or the masked editable
    positions when None); the RNG offset continues the request's step count."""
    block.w_lo, block.w_hi = w_lo, w_hi
    tokens = block.window_tokens().clone()  # [1, W]
    editable = (torch.arange(w_lo, w_hi) >= block.committed)[None]  # [1, W]: prompt / committed stay
    masks = int(((tokens == mask_id) & editable).sum())
    spread = masks if schedule_len is None else schedule_len
    decode = block.decode
    num_steps = torch.tensor([decode.steps or max(spread, 1)], dtype=torch.long)
    offset = torch.tensor([rng_offset], dtype=torch.long)
    params = policies.ParamBatch.from_configs([decode], eos_ids, tokens.device)
    state = policies.new_block_state(tokens, editable, params, mask_id, num_steps, offset)
    if schedule_len is not None:
        state.initial_masks.fill_(schedule_len)
    block.state = state


def window_has_masks(block: RequestBlock, w_lo: int, w_hi: int, mask_id: int) -> bool:
    part = block.tokens[0, w_lo - block.lo : w_hi - block.lo]
    editable = torch.arange(w_lo, w_hi) >= block.committed
    return bool(((part == mask_id) & editable).any())


def stack(states: list[BlockState]) -> BlockState:
    """R=1 states of one width -> one [R, ...] state. Policies of different algorithms keep
    different `extra` entries: a row without an entry gets zeros (every policy's initial
    value), and only rows of the owning algorithm ever read it."""
    keys: dict[str, torch.Tensor] = {}
    for s in states:
        for k, v in s.extra.items():
            keys.setdefault(k, v)

    def extra(k: str, s: BlockState) -> torch.Tensor:
        v = s.extra.get(k)
        if v is None or v.shape[1:] != keys[k].shape[1:]:
            return torch.zeros((1,) + tuple(keys[k].shape[1:]), dtype=keys[k].dtype, device=keys[k].device)
        return v

    return BlockState(
        tokens=torch.cat([s.tokens for s in states]),
        editable=torch.cat([s.editable for s in states]),
        step=torch.cat([s.step for s in states]),
        num_steps=torch.cat([s.num_steps for s in states]),
        initial_masks=torch.cat([s.initial_masks for s in states]),
        rng_offset=torch.cat([s.rng_offset for s in states]),
        extra={k: torch.cat([extra(k, s) for s in states]) for k in keys},
    )


def row(state: BlockState, r: int) -> BlockState:
    """Row r of a batch state as an R=1 state."""
    sl = slice(r, r + 1)
    return BlockState(
        tokens=state.tokens[sl], editable=state.editable[sl], step=state.step[sl],
        num_steps=state.num_steps[sl], initial_masks=state.initial_masks[sl],
        rng_offset=state.rng_offset[sl], extra={k: v[sl] for k, v in state.extra.items()},
    )
