"""How the full-attention generator gets one block's logits: exact recompute, or Fast-dLLM KV reuse.

Each cache mode is a `CanvasForward` registered under its `cache_mode` name. `block(start,
end)` returns the `logits_fn` that `denoise_block` calls once per step: it writes the
block's current tokens into the canvas, runs the forward(s) the mode prescribes (counting
them in `stats.nfe`) and returns the logits that predict the block's positions, already
shifted for shifted-logit families (Dream: position p is read from the logits at p - 1;
position 0 reuses its own).

- ``exact``: every step forwards the whole canvas. This is the definition (LLaDA's and
  Dream's original loops); with `cfg_scale` > 0 a second, unconditional pass sees the
  prompt replaced by masks and the logits become un + (s + 1) * (cond - un).
- ``prefix`` (Fast-dLLM prefix cache, an approximation): at the block start one full
  forward; the KV of everything before the block is kept and read-only for the block's
  later steps, which forward only block start .. canvas end.
- ``dual`` (Fast-dLLM dual cache, an approximation): the block-start forward keeps every
  position's KV; later steps forward only the block and overwrite its KV in place, so
  prefix and suffix KV are stale until the next block start.

In both cache modes the block-start forward's logits serve the block's first step, as
Fast-dLLM does, so that step alone equals `exact`. For shifted families the forwarded
window starts one position before the block (its logits predict the block's first token),
and that position's KV is treated like the block's: kept out of the read-only prefix in
``prefix`` mode, overwritten in place in ``dual`` mode. Fast-dLLM's Dream code instead
commits the first block token at block start and reads it from its own logits afterwards.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

import torch

from ...registry import Registry
from ..base import ReferenceModel
from ..kv_cache import CacheWrite, KVCache
from .common import LoopStats

LogitsFn = Callable[[torch.Tensor], torch.Tensor]


def select_block_logits(
    logits: torch.Tensor, window_start: int, start: int, end: int, shift: bool
) -> torch.Tensor:
    """Picks the logits that predict canvas positions [start, end).

    logits [1, L, V] belong to canvas positions [window_start, window_start + L).
    Returns [1, end - start, V].
    """
    targets = torch.arange(start, end, device=logits.device)
    # NOTE: shifted families read position p from the logits at p - 1; position 0 has no
    # predecessor and reuses its own (Dream's `cat([logits[:, :1], logits[:, :-1]])`).
    sources = (targets - 1).clamp(min=0) if shift else targets
    index = sources - window_start
    if int(index.min()) < 0 or int(index.max()) >= logits.shape[1]:
        raise ValueError(
            f"positions [{start}, {end}) need logits of positions [{int(sources.min())}, "
            f"{int(sources.max())}], outside the forwarded window starting at {window_start}"
        )
    return logits[:, index]


class CanvasForward(ABC):
    """Runs the model over one request's canvas [1, T] (edited in place by `block`'s logits_fn)."""

    def __init__(
        self,
        model: ReferenceModel,
        canvas: torch.Tensor,
        prompt_len: int,
        shift: bool,
        mask_id: int,
        cfg_scale: float,
        stats: LoopStats,
    ) -> None:
        self.model = model
        self.canvas = canvas  # [1, T] long, shared with the generator
        self.positions = torch.arange(canvas.shape[1], device=canvas.device)[None]  # [1, T]
        self.prompt_len = prompt_len
        self.shift = shift
        self.mask_id = mask_id
        self.cfg_scale = cfg_scale
        self.stats = stats

    @abstractmethod
    def block(self, start: int, end: int) -> LogitsFn:
        """The logits_fn for the block at canvas positions [start, end): block tokens [1, B]
        -> logits [1, B, V] predicting those positions."""

    def _window_start(self, start: int) -> int:
        # shifted families need the logits of the position before the block
        return max(start - 1, 0) if self.shift else start

    def _forward(
        self, lo: int, hi: int, cache: KVCache | None = None, write: CacheWrite = "none"
    ) -> torch.Tensor:
        """One counted forward of canvas positions [lo, hi) -> logits [1, hi - lo, V]."""
        self.stats.nfe += 1
        return self.model(
            self.canvas[:, lo:hi], self.positions[:, lo:hi], None, cache, write
        )


CANVAS_FORWARDS: Registry[type[CanvasForward]] = Registry("cache mode")


@CANVAS_FORWARDS.register("exact")
class ExactForward(CanvasForward):
    """Whole canvas every step (the definition); the only mode that supports cfg."""

    def block(self, start: int, end: int) -> LogitsFn:
        def logits_fn(block_tokens: torch.Tensor) -> torch.Tensor:
            self.canvas[:, start:end] = block_tokens
            return select_block_logits(self._full_logits(), 0, start, end, self.shift)

        return logits_fn

    def _full_logits(self) -> torch.Tensor:
        if self.cfg_scale <= 0:
            return self._forward(0, self.canvas.shape[1])
        # LLaDA's unsupervised classifier-free guidance: the unconditional pass is the same
        # canvas with every prompt position masked; both go in one batch of two rows.
        uncond = self.canvas.clone()
        uncond[:, : self.prompt_len] = self.mask_id
        both = torch.cat([self.canvas, uncond], dim=0)  # [2, T]
        self.stats.nfe += 2
        out = self.model(both, self.positions.expand(2, -1), None, None, "none")  # [2, T, V]
        cond, un = out[:1], out[1:]
        return un + (self.cfg_scale + 1) * (cond - un)


class _BlockCacheForward(CanvasForward):
    """Fast-dLLM's KV reuse within a block (approximate): one full forward at the block start,
    then cheaper forwards that read the cache built by it.

    prefix (`keep_suffix` False): the KV before the window is frozen at the block start and
      later steps forward window..canvas end, storing nothing;
    dual (`keep_suffix` True): every position's KV is kept and later steps forward only the
      window, overwriting its KV in place, so the stale suffix KV is still attended to.
    """

    keep_suffix: bool

    def block(self, start: int, end: int) -> LogitsFn:
        window = self._window_start(start)
        total = self.canvas.shape[1]
        cache: KVCache | None = None

        def logits_fn(block_tokens: torch.Tensor) -> torch.Tensor:
            nonlocal cache
            self.canvas[:, start:end] = block_tokens
            if cache is None:
                cache = self.model.new_cache()
                logits = self._forward(0, total, cache, "append")
                if not self.keep_suffix:
                    # keep only the KV of the positions before the window, computed in full context
                    cache.truncate(window)
                return select_block_logits(logits, 0, start, end, self.shift)
            if self.keep_suffix:
                logits = self._forward(window, end, cache, window)
            else:
                logits = self._forward(window, total, cache, "none")
            return select_block_logits(logits, window, start, end, self.shift)

        return logits_fn


@CANVAS_FORWARDS.register("prefix")
class PrefixCacheForward(_BlockCacheForward):
    """Fast-dLLM prefix cache (approximate): KV before the block frozen at the block start."""

    keep_suffix = False


@CANVAS_FORWARDS.register("dual")
class DualCacheForward(_BlockCacheForward):
    """Fast-dLLM dual cache (approximate): only the block is recomputed, its KV overwritten in place."""

    keep_suffix = True
