"""Per-request denoising state of one block, kept between SGLang steps (and FDFO rounds).

SGLang hands an algorithm a list with one opaque state per batch row and, in FDFO mode,
re-mixes rows between rounds; so each request keeps its own `RowState` and every step
gathers the live rows into one core `BlockState` ([R, B] tensors) and scatters back.
Nothing here imports sglang.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..core.policies import BlockState, DecodeConfig


@dataclass
class RowState:
    """decode: the request's validated config; editable [B] bool (False at committed prompt
    tokens). `block` is None until the first step (created then, when the vocabulary size is
    known). `core_done`: the policy finished the block but no forward has seen its final
    tokens yet; `finished`: reported done to SGLang (further steps are no-ops)."""

    decode: DecodeConfig
    editable: torch.Tensor
    rid: str | None
    block: BlockState | None = None  # a one-row BlockState ([1, B] tensors)
    core_done: bool = False
    finished: bool = False
    steps: int = 0  # policy steps taken in this block
    extra_keys: tuple[str, ...] = field(default=())


def gather(rows: list[RowState], tokens: torch.Tensor) -> BlockState:
    """One BlockState over `rows` (all initialised), with tokens [R, B] the current block."""
    blocks = [r.block for r in rows]
    cat = lambda name: torch.cat([getattr(b, name) for b in blocks], dim=0)  # noqa: E731
    keys = blocks[0].extra.keys()
    return BlockState(
        tokens=tokens,
        editable=cat("editable"),
        step=cat("step"),
        num_steps=cat("num_steps"),
        initial_masks=cat("initial_masks"),
        rng_offset=cat("rng_offset"),
        extra={k: torch.cat([b.extra[k] for b in blocks], dim=0) for k in keys},
    )


def scatter(rows: list[RowState], state: BlockState) -> None:
    """Writes the advanced counters and the policy's `extra` entries back into each row."""
    for i, row in enumerate(rows):
        b = row.block
        b.step = state.step[i : i + 1]
        b.rng_offset = state.rng_offset[i : i + 1]
        b.extra = {k: v[i : i + 1] for k, v in state.extra.items()}
