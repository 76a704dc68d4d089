"""Runs a sweep point over an eval set through the real vLLM engine (our plugin for dLLMs, stock vLLM for the AR twin).

One in-process `LLM` per checkpoint (`VLLM_ENABLE_V1_MULTIPROCESSING=0`: the engine core
steps in this process, so the clock read after each `step()` is the client's view with no
IPC in between). A point is a closed loop: `concurrency` requests are in flight, and each one
that finishes is replaced by the next example until all are done; the engine's continuous
batching decides how they share forwards.

Per request: submitted at `start_s`, first output token returned at `first_token_s` (the
engine streams a dLLM's tokens when their block is committed, so this is the time to the
first committed block), last at `end_s`. NFE and denoising steps come from our scheduler's
`kv_transfer_params["dllm"]`; for AR decoding every forward yields one token (the prefill
yields the first), so NFE = steps = output tokens.
"""
from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..train.checkpoint import AR_ARCHITECTURE, checkpoint_architecture
from ..vllm_adapter.decode_params import STATS_KEY
from ..train.data import prompt_ids
from ..train.tasks import Example, exact_match
from .records import RequestRecord
from .sweep import GREEDY, SweepPoint

# KV cache for the tiny checkpoints: 1 GiB holds every concurrent request many times over
_ENV_DEFAULTS = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def extra_args(point: SweepPoint) -> dict[str, Any]:
    """The request's `SamplingParams.extra_args` (the OpenAI body's `vllm_xargs`) for a dLLM point."""
    args: dict[str, Any] = {"algorithm": point.algorithm, **dict(point.knobs), "cache_mode": point.cache_mode}
    if point.steps is not None:
        args["steps"] = point.steps
    if point.block_size is not None:
        args["block_size"] = point.block_size
    return args


@dataclass
class _InFlight:
    index: int
    start_s: float
    ids: list[int] = field(default_factory=list)
    first_s: float | None = None


class VllmRunner:
    """One checkpoint served by an in-process vLLM engine; `run_point` measures one sweep point."""

    def __init__(self, model_dir: str | Path, max_num_seqs: int = 16, max_model_len: int = 256) -> None:
        for key, value in _ENV_DEFAULTS.items():
            os.environ.setdefault(key, value)
        from vllm import LLM

        self.model_dir = Path(model_dir)
        self.autoregressive = checkpoint_architecture(self.model_dir) == AR_ARCHITECTURE
        # NOTE: eager (no CPU graph compile) keeps start-up at seconds; fp32 like the reference,
        # so the two runners can be compared token for token.
        self.llm = LLM(
            model=str(self.model_dir), dtype="float32", enforce_eager=True, max_model_len=max_model_len,
            max_num_seqs=max_num_seqs, max_num_batched_tokens=max(2048, max_model_len), seed=0,
        )
        self.max_num_seqs = max_num_seqs
        self.tokenizer = self.llm.get_tokenizer()
        self._ids = 0

    def close(self) -> None:
        del self.llm

    def _params(self, point: SweepPoint, max_tokens: int):
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        if self.autoregressive != (point.algorithm == GREEDY):
            kind = "autoregressive" if self.autoregressive else "a dLLM"
            raise ValueError(f"{self.model_dir.name} is {kind}: sweep point {point.label!r} does not apply")
        xargs = None if self.autoregressive else extra_args(point)
        # DELTA: every step returns the tokens it added, so the first one can be timed
        return SamplingParams(temperature=0.0, max_tokens=max_tokens, extra_args=xargs,
                              output_kind=RequestOutputKind.DELTA)

    def warm_up(self, examples: Sequence[Example], point: SweepPoint, max_tokens: int) -> None:
        """Runs a few requests so one-time costs (allocation, first kernels) stay out of the timings."""
        self.run_point(examples[: min(len(examples), 4)], point, max_tokens)

    def run_point(self, examples: Sequence[Example], point: SweepPoint, max_tokens: int) -> list[RequestRecord]:
        """Decodes every example with `point` at `point.concurrency`; one record per example, in order."""
        from vllm.inputs import TokensPrompt

        if point.concurrency > self.max_num_seqs:
            raise ValueError(f"concurrency {point.concurrency} exceeds the engine's max_num_seqs {self.max_num_seqs}")
        params = self._params(point, max_tokens)
        prompts = [prompt_ids(self.tokenizer, ex.prompt) for ex in examples]
        engine = self.llm.llm_engine
        todo = deque(range(len(examples)))
        live: dict[str, _InFlight] = {}
        records: list[RequestRecord | None] = [None] * len(examples)
        while todo or live:
            while todo and len(live) < point.concurrency:
                i = todo.popleft()
                rid = f"bench-{self._ids}"
                self._ids += 1
                live[rid] = _InFlight(i, time.perf_counter())
                engine.add_request(rid, TokensPrompt(prompt_token_ids=prompts[i]), params)
            outputs = engine.step()
            now = time.perf_counter()
            for out in outputs:
                state = live.get(out.request_id)
                if state is None:
                    continue
                new = list(out.outputs[0].token_ids)
                if new and state.first_s is None:
                    state.first_s = now
                state.ids.extend(new)
                if out.finished:
                    del live[out.request_id]
                    records[state.index] = self._record(examples[state.index], prompts[state.index], state, now, out)
        return [r for r in records if r is not None]

    def _record(self, ex: Example, prompt: list[int], state: _InFlight, end: float, out) -> RequestRecord:
        n = len(state.ids)
        if self.autoregressive:
            nfe = steps = n
        else:
            stats = (out.kv_transfer_params or {}).get(STATS_KEY) or {}
            nfe, steps = int(stats.get("nfe", 0)), int(stats.get("denoising_steps", 0))
        text = self.tokenizer.decode(state.ids, skip_special_tokens=True)
        return RequestRecord(
            request_id=str(state.index), prompt_tokens=len(prompt), output_tokens=n, start_s=state.start_s,
            first_token_s=state.first_s, end_s=end, nfe=nfe, steps=steps, correct=exact_match(text, ex.answer),
            finish_reason=str(out.outputs[0].finish_reason or "stop"), output_ids=tuple(state.ids),
        )
