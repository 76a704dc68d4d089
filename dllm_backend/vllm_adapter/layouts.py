"""Where a family's denoising block sits on a request's token sequence, and what each step schedules.

Engine-free (plain ints): the scheduler and the model runner both call these rules, so
they agree on every request's block without passing extra data across the process
boundary. One `Layout` per reference generator (`FamilySpec.generator`), in `LAYOUTS`:

- ``block_diffusion`` (SDAR, SDAR-MoE, LLaDA2): blocks aligned to position 0; a step
  queries the block [s, s + B) over the committed KV; a finished block is forwarded once
  more (the commit forward) so its final KV is written.
- ``full_attention`` (LLaDA, LLaDA-MoE, Dream): the canvas is prompt + max_tokens; blocks
  start at the generation start (a shorter last block); a step queries from 0 (``exact``,
  and the first step of every block in the cache modes), from the block's window
  (``prefix``: up to the canvas end; ``dual``: up to the block end, attending the whole
  canvas's KV, whose suffix is stale until the next block start). No commit forward.
- ``fast_dllm_v2``: block-causal like the first, logits shifted inside the block, the
  policy runs on one sub-block at a time, and the commit forward's last logit gives the
  next block's first token (the autoregressive token).

Positions: `lo`/`hi` bound the block, `committed` = prompt + output tokens so far.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..core.registry import Registry


@dataclass(frozen=True)
class Geometry:
    """One request's fixed shape: prompt length, token budget, block, cache mode, logit shift."""

    prompt_len: int
    max_tokens: int
    block: int
    cache_mode: str = "exact"
    shift: bool = False
    sub_block: int | None = None

    @property
    def canvas_end(self) -> int:
        return self.prompt_len + self.max_tokens


@dataclass(frozen=True)
class StepPlan:
    """A denoising step: the block [lo, hi); the query [query_start, query_end) (drafts fill
    [committed, query_end)); `seq_len` keys are attended (> query_end only in dual mode)."""

    lo: int
    hi: int
    query_start: int
    query_end: int
    seq_len: int


class Layout:
    """Block-causal rules (the base); families differ by overriding a few of them."""

    commit_forward = True  # a finished block is forwarded again to write its final KV
    ar_token = False  # the commit forward's last logit gives the next committed token
    early_stop = False  # a stop id with no mask before it ends the request mid-block

    def span(self, geo: Geometry, committed: int) -> tuple[int, int]:
        lo = committed - committed % geo.block
        return lo, lo + geo.block

    def plan(self, geo: Geometry, committed: int, fresh: bool) -> StepPlan:
        """The next step; `fresh`: the block has not been stepped yet."""
        lo, hi = self.span(geo, committed)
        return StepPlan(lo, hi, lo, hi, hi)

    def rollback(self, geo: Geometry, computed: int, committed_before: int, committed: int, fresh: bool) -> int:
        """num_computed after a step: KV is final only for whole blocks committed before it."""
        keep = min(computed, committed_before)
        return keep - keep % geo.block

    def chunk(self, geo: Geometry, start: int, num_new_tokens: int, committed: int) -> int:
        """Size of a chunk without drafts (prefill, commit): whole blocks, or nothing."""
        if start < committed - committed % geo.block:
            boundary = start - start % geo.block + geo.block
            return boundary - start if start + num_new_tokens >= boundary else 0
        # the partial tail of a newly admitted / resumed request (rolled back afterwards)
        return num_new_tokens

    def windows(self, geo: Geometry, lo: int, hi: int) -> list[tuple[int, int]]:
        """The spans the policy denoises one after the other inside the block."""
        return [(lo, hi)]

    def sources(self, geo: Geometry, lo: int, w_lo: int, w_hi: int) -> list[int]:
        """Position whose logits row predicts each position of [w_lo, w_hi)."""
        return list(range(w_lo, w_hi))

    def schedule_len(self, geo: Geometry, lo: int, hi: int) -> int | None:
        """What fixed schedules spread over the steps (None: the masked positions)."""
        return hi - lo

    def attended(self, geo: Geometry, query_end: int) -> int:
        """Keys a denoising query ending at `query_end` attends: [0, attended)."""
        return query_end

    def room(self, geo: Geometry, max_model_len: int) -> int:
        """Most output tokens that fit: whole blocks must fit inside max_model_len."""
        return max_model_len - max_model_len % geo.block - geo.prompt_len


class FastDllmV2Layout(Layout):
    ar_token = True
    early_stop = True

    def windows(self, geo: Geometry, lo: int, hi: int) -> list[tuple[int, int]]:
        sub = geo.sub_block or geo.block
        return [(s, s + sub) for s in range(lo, hi, sub)]

    def sources(self, geo: Geometry, lo: int, w_lo: int, w_hi: int) -> list[int]:
        # NOTE: shifted inside the block; its first position (prompt or AR token, never
        # masked) keeps its own row, which no policy reads
        return [p - 1 if p > lo else p for p in range(w_lo, w_hi)]

    def schedule_len(self, geo: Geometry, lo: int, hi: int) -> int | None:
        return None


class FullCanvasLayout(Layout):
    commit_forward = False

    def span(self, geo: Geometry, committed: int) -> tuple[int, int]:
        # blocks are committed whole from the generation start, so `committed` is a block start
        return committed, min(committed + geo.block, geo.canvas_end)

    def plan(self, geo: Geometry, committed: int, fresh: bool) -> StepPlan:
        lo, hi = self.span(geo, committed)
        end = geo.canvas_end
        if fresh or geo.cache_mode == "exact":
            return StepPlan(lo, hi, 0, end, end)
        # shifted families need the row before the block; its KV is treated like the block's
        window = max(lo - 1, 0) if geo.shift else lo
        if geo.cache_mode == "prefix":
            return StepPlan(lo, hi, window, end, end)
        return StepPlan(lo, hi, window, hi, end)  # dual

    def rollback(self, geo: Geometry, computed: int, committed_before: int, committed: int, fresh: bool) -> int:
        if committed >= geo.canvas_end:
            return computed
        return min(computed, self.plan(geo, committed, fresh).query_start)

    def chunk(self, geo: Geometry, start: int, num_new_tokens: int, committed: int) -> int:
        # NOTE: only an admission is scheduled without drafts (the waiting queue carries
        # none); its KV is discarded, so one token keeps that forward cheap
        return min(num_new_tokens, 1)

    def sources(self, geo: Geometry, lo: int, w_lo: int, w_hi: int) -> list[int]:
        if not geo.shift:
            return list(range(w_lo, w_hi))
        # Dream: position p is read from the row of p - 1 (p >= prompt_len >= 1)
        return [max(p - 1, 0) for p in range(w_lo, w_hi)]

    def schedule_len(self, geo: Geometry, lo: int, hi: int) -> int | None:
        return None

    def attended(self, geo: Geometry, query_end: int) -> int:
        # dual: the block's query also sees the canvas suffix's stale KV from the block start
        return geo.canvas_end if geo.cache_mode == "dual" else query_end

    def room(self, geo: Geometry, max_model_len: int) -> int:
        return max_model_len - geo.prompt_len


LAYOUTS: Registry[Layout] = Registry("block layout")
LAYOUTS.add("block_diffusion", Layout())
LAYOUTS.add("full_attention", FullCanvasLayout())
LAYOUTS.add("fast_dllm_v2", FastDllmV2Layout())
