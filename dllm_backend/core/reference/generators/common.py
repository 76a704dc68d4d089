"""The denoising loop over one block, shared by every reference generator."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from ... import policies
from ...policies.base import DecodeConfig


@dataclass
class LoopStats:
    """Counters of one request's generation, filled in by the generators."""

    nfe: int = 0  # model forwards
    steps: int = 0  # denoising steps (policy calls)
    tokens_per_step: list[int] = field(default_factory=list)


def denoise_block(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    tokens: torch.Tensor,
    editable: torch.Tensor,
    decode: DecodeConfig,
    params: "policies.ParamBatch",
    mask_id: int,
    stats: LoopStats,
    max_steps: int | None = None,
    schedule_len: int | None = None,
) -> torch.Tensor:
    """Runs policy steps on one block until the policy says it is done.

    logits_fn: block tokens [1, B] -> logits [1, B, V] for those positions, already
    shifted for shifted families; it runs (and counts in `stats.nfe`) the forwards.
    tokens [1, B] (mask_id where undecided), editable [1, B]. Returns the final [1, B].
    `max_steps` bounds the loop (default: 4 * B + the editing policies' post-edit steps),
    a guard against a policy that stops committing; exceeding it raises RuntimeError.
    `schedule_len`: what fixed schedules spread over the steps. None = the block's masked
    positions (LLaDA, Dream); the block length for SDAR / LLaDA2, whose loops schedule
    the whole block even when prompt tokens fill part of it (then steps default to it too).
    """
    masks = int(((tokens == mask_id) & editable).sum())
    spread = masks if schedule_len is None else schedule_len
    num_steps = torch.tensor([decode.steps or max(spread, 1)], dtype=torch.long, device=tokens.device)
    offset = torch.tensor([stats.steps], dtype=torch.long, device=tokens.device)
    state = policies.new_block_state(tokens, editable, params, mask_id, num_steps, offset)
    if schedule_len is not None:
        state.initial_masks.fill_(schedule_len)
    limit = max_steps or 4 * tokens.shape[1] + int(decode.max_post_edit_steps or 0) + int(num_steps)
    for _ in range(limit):
        out = policies.step(logits_fn(state.tokens), state, params, mask_id)
        state.tokens = out.tokens
        state.step += 1
        state.rng_offset += 1
        stats.steps += 1
        stats.tokens_per_step.append(int(out.committed.sum()))
        if bool(out.done.all()):
            return state.tokens
    raise RuntimeError(f"block not finished after {limit} steps with algorithm {decode.algorithm!r}")
