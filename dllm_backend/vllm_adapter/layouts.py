"""Where a family's denoising block sits on a request's token sequence, and what each step schedules.

Engine-free (plain ints): the scheduler and the model runner both call these rules, so
they agree on every request's block without passing extra data across the process
boundary. One `Layout` per reference generator (`FamilySpec.generator`), in `LAYOUTS`:

- ``block_diffusion`` (SDAR, SDAR-MoE, LLaDA2): blocks aligned to position 0. A step
  queries the block [lo, lo + B) over the committed KV. KV is final only for whole blocks
  forwarded with their final tokens, so a query may start at any earlier block boundary
  whose KV is not final yet: the whole-block prompt chunk(s) of a request, or the block
  just finished (whose final KV the reference writes with a separate commit forward), go
  in front of the block in the same query. Attention stays exactly block-causal because
  the runner presents every query as one non-causal segment per block (`segments`).
- ``full_attention`` (LLaDA, LLaDA-MoE, Dream): the canvas is prompt + max_tokens; blocks
  start at the generation start (a shorter last block); a step queries from 0 (``exact``,
  and the first step of every block in the cache modes), from the block's window
  (``prefix``: up to the canvas end; ``dual``: up to the block end, attending the whole
  canvas's KV, whose suffix is stale until the next block start). No commit forward.
- ``fast_dllm_v2``: block-causal like the first, logits shifted inside the block, the
  policy runs on one sub-block at a time, and the forward that completes a block's KV
  (the prefill of a whole-block prompt, or the commit forward) gives the next block's
  first token from its last logit (the autoregressive token). That forward therefore
  cannot share a query with the next block, whose first input it produces: only prompt
  chunks before a block that already holds its first token (a prompt ending inside a
  block) are folded into the block's first step.

Segments (`segments`): the query [q_lo, q_hi) of one request is attended as a list of
(start, end, attended) segments, each a non-causal query over keys [0, attended). A
block-causal query is cut at every block boundary and each piece attends up to its own
end: exactly the block-causal mask (a one-block query is one segment). A full-attention
query is one segment (attending the canvas end in dual mode).

Positions: `lo`/`hi` bound the block, `committed` = prompt + output tokens so far,
`computed` = tokens whose KV is in the cache (vLLM's num_computed_tokens).
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


Segment = tuple[int, int, int]  # (start, end, attended): queries [start, end) attend keys [0, attended)


class Layout:
    """Block-causal rules (the base); families differ by overriding a few of them."""

    ar_token = False  # the forward that completes a block's KV gives the next committed token
    early_stop = False  # a stop id with no mask before it ends the request mid-block

    def span(self, geo: Geometry, committed: int) -> tuple[int, int]:
        lo = committed - committed % geo.block
        return lo, lo + geo.block

    def plan(self, geo: Geometry, committed: int, computed: int, fresh: bool) -> StepPlan | None:
        """The next denoising step over the KV of [0, computed), or None when a chunk without
        drafts has to run first; `fresh`: the block has not been stepped yet."""
        lo, hi = self.span(geo, committed)
        start = self.fold_start(geo, committed, computed, lo)
        return None if start is None else StepPlan(lo, hi, start, hi, hi)

    def fold_start(self, geo: Geometry, committed: int, computed: int, lo: int) -> int | None:
        """Where a denoising query of the block at `lo` may start: at `computed` if it is a
        block boundary at or below `lo`. The whole blocks [computed, lo) hold final tokens
        (prompt, or the block finished last step) and get their final KV in the same query,
        each as its own segment, exactly as separate prefill / commit forwards would."""
        return computed if computed <= lo and computed % geo.block == 0 else None

    def rollback(self, geo: Geometry, computed: int, committed_before: int, committed: int, fresh: bool) -> int:
        """num_computed after a step: KV is final only for whole blocks committed before it."""
        keep = min(computed, committed_before)
        return keep - keep % geo.block

    def chunk(self, geo: Geometry, start: int, num_new_tokens: int, committed: int) -> int:
        """Size of a chunk without drafts (admission, re-prefill after preemption, commit)."""
        if start < committed - committed % geo.block:
            return self.front(geo, start, num_new_tokens, committed)
        # the partial tail of a newly admitted / resumed request (rolled back afterwards)
        return num_new_tokens

    def front(self, geo: Geometry, start: int, num_new_tokens: int, committed: int) -> int:
        """The whole blocks of [start, start of the committed block) that fit in
        `num_new_tokens`, all in one query; 0 if not even one fits."""
        end = min(start + num_new_tokens, committed - committed % geo.block)
        return max(end - end % geo.block - start, 0)

    def segments(self, geo: Geometry, q_lo: int, q_hi: int) -> list[Segment]:
        """The query [q_lo, q_hi) cut at every block boundary; each piece attends up to its
        own end, i.e. its block and every block before it (block-causal)."""
        cuts = [q_lo, *range(q_lo - q_lo % geo.block + geo.block, q_hi, geo.block), q_hi]
        return [(s, e, e) for s, e in zip(cuts, cuts[1:])]

    def windows(self, geo: Geometry, lo: int, hi: int) -> list[tuple[int, int]]:
        """The spans the policy denoises one after the other inside the block."""
        return [(lo, hi)]

    def sources(self, geo: Geometry, lo: int, w_lo: int, w_hi: int) -> list[int]:
        """Position whose logits row predicts each position of [w_lo, w_hi)."""
        return list(range(w_lo, w_hi))

    def schedule_len(self, geo: Geometry, lo: int, hi: int) -> int | None:
        """What fixed schedules spread over the steps (None: the masked positions)."""
        return hi - lo

    def room(self, geo: Geometry, max_model_len: int) -> int:
        """Most output tokens that fit: whole blocks must fit inside max_model_len."""
        return max_model_len - max_model_len % geo.block - geo.prompt_len


class FastDllmV2Layout(Layout):
    ar_token = True
    early_stop = True

    def fold_start(self, geo: Geometry, committed: int, computed: int, lo: int) -> int | None:
        # NOTE: committed == lo: the block's first token is the AR token, the last logit of
        # the forward that completes [0, lo) (prefill or commit forward). The block's first
        # step needs that token as input, so that forward runs alone, as a chunk.
        if committed == lo:
            return None
        return super().fold_start(geo, committed, computed, lo)

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
    def span(self, geo: Geometry, committed: int) -> tuple[int, int]:
        # blocks are committed whole from the generation start, so `committed` is a block start
        return committed, min(committed + geo.block, geo.canvas_end)

    def plan(self, geo: Geometry, committed: int, computed: int, fresh: bool) -> StepPlan | None:
        plan = self._plan(geo, committed, fresh)
        return plan if computed == plan.query_start else None

    def _plan(self, geo: Geometry, committed: int, fresh: bool) -> StepPlan:
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
        return min(computed, self._plan(geo, committed, fresh).query_start)

    def chunk(self, geo: Geometry, start: int, num_new_tokens: int, committed: int) -> int:
        # NOTE: only an admission is scheduled without drafts (the waiting queue carries
        # none); its KV is discarded, so one token keeps that forward cheap
        return min(num_new_tokens, 1)

    def front(self, geo: Geometry, start: int, num_new_tokens: int, committed: int) -> int:
        return 0  # a query starts at its window, never earlier

    def segments(self, geo: Geometry, q_lo: int, q_hi: int) -> list[Segment]:
        return [(q_lo, q_hi, self.attended(geo, q_hi))]

    def sources(self, geo: Geometry, lo: int, w_lo: int, w_hi: int) -> list[int]:
        if not geo.shift:
            return list(range(w_lo, w_hi))
        # Dream: position p is read from the row of p - 1 (p >= prompt_len >= 1)
        return [max(p - 1, 0) for p in range(w_lo, w_hi)]

    def schedule_len(self, geo: Geometry, lo: int, hi: int) -> int | None:
        return None

    def attended(self, geo: Geometry, query_end: int) -> int:
        """Keys a query ending at `query_end` attends: in dual mode the block's query also
        sees the canvas suffix's stale KV from the block start."""
        return geo.canvas_end if geo.cache_mode == "dual" else query_end

    def room(self, geo: Geometry, max_model_len: int) -> int:
        return max_model_len - geo.prompt_len


LAYOUTS: Registry[Layout] = Registry("block layout")
LAYOUTS.add("block_diffusion", Layout())
LAYOUTS.add("full_attention", FullCanvasLayout())
LAYOUTS.add("fast_dllm_v2", FastDllmV2Layout())
