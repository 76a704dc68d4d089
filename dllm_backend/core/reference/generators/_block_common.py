"""Forwards over a block-causal canvas (KV-cached or recomputed) shared by the block-causal generators.

Blocks are aligned to absolute position 0: block b is canvas positions [b*B, (b+1)*B).
Attention is block-causal: a query in block i sees every key in blocks <= i.

Two ways to get the same logits, one class each:
- `CachedForward` (the references' loops: SDAR, Fast-dLLM v2): the complete prompt
  blocks are prefilled once with an explicit block-causal mask and their KV appended;
  a denoising step forwards only the current block against the read-only cache (mask
  None: the block sees the cache and itself); when the block is finished one more
  forward of its final tokens appends its KV (the commit forward).
- `RecomputeForward` (LLaDA2's own loop): every forward runs everything from position 0
  to the end of the current block with an explicit block-causal mask and no cache, so
  nothing has to be committed; a commit forward runs only when its logits are needed.
Both count every forward in `stats.nfe`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable, Literal

import torch

from ..base import ReferenceModel
from ..kv_cache import CacheWrite, KVCache
from .common import LoopStats

LogitsFn = Callable[[torch.Tensor], torch.Tensor]  # block tokens -> logits, for `denoise_block`


def block_causal_mask(q_lo: int, q_hi: int, k_hi: int, block: int, device: torch.device) -> torch.Tensor:
    """Mask [1, q_hi - q_lo, k_hi] bool for queries at [q_lo, q_hi) over keys at [0, k_hi):
    True where the key's block is not after the query's block."""
    q_block = torch.arange(q_lo, q_hi, device=device) // block  # [Lq]
    k_block = torch.arange(k_hi, device=device) // block  # [Lk]
    return (k_block[None, :] <= q_block[:, None])[None]


class BlockCausalForward(ABC):
    """Runs the model over one request's canvas [1, T]; the generator edits the canvas in place."""

    def __init__(self, model: ReferenceModel, canvas: torch.Tensor, block: int, stats: LoopStats) -> None:
        self.model = model
        self.canvas = canvas  # [1, T] long, shared with the generator
        self.positions = torch.arange(canvas.shape[1], device=canvas.device)[None]  # [1, T]
        self.block = block
        self.stats = stats

    @abstractmethod
    def prefill(self, end: int, need_logits: bool) -> torch.Tensor | None:
        """Makes the complete prompt blocks [0, end) visible to later blocks; `end` is a
        multiple of the block. Returns their logits [1, end, V] when `need_logits` (else
        possibly None)."""

    @abstractmethod
    def block_logits(self, b: int) -> torch.Tensor:
        """Raw logits [1, B, V] of block b's current canvas tokens (a denoising step)."""

    @abstractmethod
    def commit(self, b: int, need_logits: bool) -> torch.Tensor | None:
        """Makes finished block b visible to later blocks. Returns its logits [1, B, V]
        when `need_logits` (else possibly None)."""

    def _forward(
        self, lo: int, hi: int, mask: torch.Tensor | None, cache: KVCache | None, write: CacheWrite
    ) -> torch.Tensor:
        """One counted forward of canvas positions [lo, hi) -> logits [1, hi - lo, V]."""
        self.stats.nfe += 1
        return self.model(self.canvas[:, lo:hi], self.positions[:, lo:hi], mask, cache, write)


class CachedForward(BlockCausalForward):
    """Per-block KV cache: prefill once, read-only during a block's steps, appended at commit."""

    def __init__(self, model: ReferenceModel, canvas: torch.Tensor, block: int, stats: LoopStats) -> None:
        super().__init__(model, canvas, block, stats)
        self.cache = model.new_cache()

    def prefill(self, end: int, need_logits: bool) -> torch.Tensor | None:
        if end == 0:
            return None
        mask = block_causal_mask(0, end, end, self.block, self.canvas.device)
        return self._forward(0, end, mask, self.cache, "append")

    def block_logits(self, b: int) -> torch.Tensor:
        self._check_cache(b)
        # NOTE: mask None is exact here: the cache holds only earlier blocks, all visible,
        # and the block sees itself fully.
        return self._forward(b * self.block, (b + 1) * self.block, None, self.cache, "none")

    def commit(self, b: int, need_logits: bool) -> torch.Tensor | None:
        self._check_cache(b)
        return self._forward(b * self.block, (b + 1) * self.block, None, self.cache, "append")

    def _check_cache(self, b: int) -> None:
        # a missed commit would silently shift every later position's context
        if self.cache.length != b * self.block:
            raise RuntimeError(f"KV cache holds {self.cache.length} positions, block {b} needs {b * self.block}")


class RecomputeForward(BlockCausalForward):
    """No cache: each forward recomputes positions [0, end of block) with a block-causal mask."""

    def prefill(self, end: int, need_logits: bool) -> torch.Tensor | None:
        return self._prefix(end) if need_logits and end > 0 else None

    def block_logits(self, b: int) -> torch.Tensor:
        return self._prefix((b + 1) * self.block)[:, b * self.block :]

    def commit(self, b: int, need_logits: bool) -> torch.Tensor | None:
        return self.block_logits(b) if need_logits else None

    def _prefix(self, end: int) -> torch.Tensor:
        mask = block_causal_mask(0, end, end, self.block, self.canvas.device)
        return self._forward(0, end, mask, None, "none")


def cut_at_stop(
    generated: list[int], eos_ids: tuple[int, ...]
) -> tuple[list[int], Literal["stop", "length"]]:
    """Cuts generated ids after the first stop id (kept): ("stop"), else all of them ("length")."""
    stops = set(eos_ids)
    for i, tok in enumerate(generated):
        if tok in stops:
            return generated[: i + 1], "stop"
    return generated, "length"


def padded_length(prompt_len: int, max_tokens: int, block: int) -> int:
    """Canvas length: prompt + max_tokens rounded up to whole blocks (the last block is full)."""
    return -(-(prompt_len + max_tokens) // block) * block
