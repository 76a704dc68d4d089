"""The denoising scheduler: vLLM's scheduler with a request's current block carried as draft tokens.

Life of a request (`c` = committed tokens = prompt + output; the block, the query of a
step and the rollback after it come from the family's `layouts.Layout`):
1. admission: a chunk without drafts (the waiting queue carries none), sized by
   `Layout.chunk`. Block-causal: every whole block of the prompt that the budget holds,
   in one forward (one non-causal segment per block, so the KV is block-causal); a
   prompt shorter than a block is admitted with its tokens, discarded. Full attention:
   one token, discarded.
2. denoise: once `Layout.plan` accepts num_computed as the start of a query, the block's
   undecided tokens (and, for full attention, the masks up to the query end) become
   the request's `spec_token_ids`, so the stock scheduler schedules exactly the plan's
   query, allocates its slots and passes the tokens to the runner, which runs one policy
   step. Block-causal queries may start at an earlier block boundary: whole blocks
   whose KV is not final yet (the rest of a chunked prompt, a re-prefill after
   preemption, the block finished last step) ride in front of the block's first step.
   If the budget cannot hold the whole query, the chunk hook schedules only the whole
   blocks in front that fit (`Layout.front`), and the block is armed again next step.
   `update_from_output` rolls num_computed back (`Layout.rollback`), so the next step
   rewrites the same KV slots with the updated block.
3. when the policy finishes the block, the runner returns its new tokens as ordinary
   sampled tokens: the stock code appends them, checks stops (EOS, stop ids, max_tokens)
   and streams them. Block-causal families write the finished block's final KV in the
   next block's first step (step 2). Fast-dLLM v2 cannot: the forward that completes a
   block's KV gives the next block's first token (its last logit), which that block's
   steps read, so it runs alone (the commit forward, scheduled by stock code because
   c > num_computed). Full attention starts the next block.

Each request's model forwards (chunks without drafts and denoising steps) are
counted and returned in `kv_transfer_params["dllm"]` (the field the OpenAI server copies
from the final output into the non-streaming response): `{"nfe", "denoising_steps",
"tokens_per_forward"}` (output tokens / nfe). Every output of a request carries its counts
so far, because a stop string is found by the front end, which then aborts the request here:
the output holding the stop string is its last one, and the abort emits none.

Seeds: a request without one gets one drawn here, once, into its SamplingParams (which
travel to every worker and stay with a preempted request), so unseeded requests and the n
samples of one request differ, while every tensor-parallel rank and a resumed request use
the same seed. The draws follow vLLM's `--seed`, as stock vLLM's unseeded sampling does.

vLLM internals relied on: `Scheduler.schedule` / `update_from_output` /
`_free_request` / `_preempt_request`, the chunk-size hook `_mamba_block_aligned_split`
(enabled through `need_mamba_block_aligned_split`; dLLMs have no Mamba layers), and
`num_sampled_tokens_per_step` (0: no bonus token per step).
"""
from __future__ import annotations

import copy
import dataclasses
import random

from vllm.v1.core.sched.output import SchedulerOutput
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.request import Request

from .decode_params import SEED_MAX, STATS_KEY
from .layouts import Geometry
from .request_options import settings
from .serve_spec import ServeSpec



class DllmScheduler(Scheduler):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dllm = ServeSpec.from_vllm_config(self.vllm_config)
        self.layout = self.dllm.layout
        # NOTE: checked again here, where vLLM's defaults are final (the config hook may run earlier)
        self.dllm.check_token_budget(self.max_num_scheduled_tokens, self.max_model_len)
        # NOTE: a denoising step appends no sampled token; it only rewrites the block
        self.num_sampled_tokens_per_step = 0
        # NOTE: routes every chunk size through `_mamba_block_aligned_split` below
        self.need_mamba_block_aligned_split = True
        self._geo: dict[str, Geometry] = {}
        self._blocks: dict[str, list[int]] = {}  # req -> undecided part of its block
        self._committed: dict[str, int] = {}  # req -> committed tokens when last scheduled
        self._stats: dict[str, list[int]] = {}  # req -> [forwards, denoising steps]
        seed = self.vllm_config.model_config.seed
        # NOTE: one stream per data-parallel engine, so two engines never draw the same seeds
        rank = self.vllm_config.parallel_config.data_parallel_rank
        self._seeds = random.Random(f"{seed}/{rank}") if seed is not None else random.SystemRandom()

    # ----- admission and cleanup -----
    def add_request(self, request: Request) -> None:
        params = request.sampling_params
        if params is not None:
            # NOTE: in-process engines hand the n samples of an unseeded request one shared
            # SamplingParams; this request's seed and caps must stay its own
            request.sampling_params = params = copy.copy(params)
            if params.seed is None:
                params.seed = self._seeds.randint(0, SEED_MAX)
            if not params.ignore_eos:
                # the family's stops (EOS, end-of-turn) end generation, as in the reference
                params.stop_token_ids = sorted(set(params.stop_token_ids or ()) | set(self.dllm.eos_ids))
            geo = settings(params, self.dllm, request.num_prompt_tokens).geometry
            # NOTE: every block is denoised whole, so the output may only reach as far as
            # the layout allows within max_model_len (vLLM already caps max_tokens there)
            room = self.layout.room(geo, self.max_model_len)
            if 1 <= room < request.max_tokens:
                request.max_tokens = room
            # the runner reads the geometry from the same params (they travel to the worker)
            params.max_tokens = request.max_tokens
            self._geo[request.request_id] = settings(params, self.dllm, request.num_prompt_tokens).geometry
        self._stats[request.request_id] = [0, 0]
        super().add_request(request)

    def _free_request(self, request: Request, delay_free_blocks: bool = False):
        req_id = request.request_id
        for table in (self._blocks, self._committed, self._geo):
            table.pop(req_id, None)
        kv_params, ec_params = super()._free_request(request, delay_free_blocks)
        stats = self._stats_of(request)
        self._stats.pop(req_id, None)
        return dict(kv_params or {}, **{STATS_KEY: stats}), ec_params

    def _stats_of(self, request: Request) -> dict:
        nfe, steps = self._stats.get(request.request_id, (0, 0))
        return {"nfe": nfe, "denoising_steps": steps, "tokens_per_forward": request.num_output_tokens / max(nfe, 1)}

    def _preempt_request(self, request: Request, timestamp: float, drop_stale_output: bool = False) -> None:
        # NOTE: the resumed request re-prefills its committed blocks and restarts this block
        self._blocks.pop(request.request_id, None)
        super()._preempt_request(request, timestamp, drop_stale_output)

    # ----- scheduling -----
    def schedule(self, throttle_prefills: bool = False) -> SchedulerOutput:
        for request in self.running:
            self._arm_block(request)
        out = super().schedule(throttle_prefills)
        for req_id in out.num_scheduled_tokens:
            self._committed[req_id] = self.requests[req_id].num_tokens
            stats = self._stats.setdefault(req_id, [0, 0])
            stats[0] += 1
            stats[1] += req_id in out.scheduled_spec_decode_tokens
        return out

    def _arm_block(self, request: Request) -> None:
        """Puts the request's block into its drafts when it is ready to denoise."""
        geo = self._geo.get(request.request_id)
        if geo is None:
            return
        committed = request.num_tokens
        tail = self._blocks.get(request.request_id)
        plan = self.layout.plan(geo, committed, request.num_computed_tokens, fresh=tail is None)
        if plan is None or plan.seq_len > self.max_model_len:
            return  # the seq_len guard: only a prompt ending in the last partial block
        if tail is None:
            tail = [self.dllm.mask_id] * (plan.hi - committed)
        request.spec_token_ids = list(tail) + [self.dllm.mask_id] * (plan.query_end - plan.hi)

    def _mamba_block_aligned_split(
        self,
        request: Request,
        num_new_tokens: int,
        num_new_local_computed_tokens: int = 0,
        num_external_computed_tokens: int = 0,
    ) -> int:
        """Clips a chunk: a denoising query is scheduled whole, or else only the chunk in front
        of its block that the budget holds (no drafts are then scheduled: the block is armed
        again next step); other chunks follow the layout."""
        start = request.num_computed_tokens + num_new_local_computed_tokens + num_external_computed_tokens
        geo = self._geo.get(request.request_id)
        if request.spec_token_ids:
            if num_new_tokens >= request.num_tokens + len(request.spec_token_ids) - start:
                return num_new_tokens
            return self.layout.front(geo, start, num_new_tokens, request.num_tokens)
        if geo is None:
            return num_new_tokens
        return self.layout.chunk(geo, start, num_new_tokens, request.num_tokens)

    def update_from_output(
        self, scheduler_output: SchedulerOutput, model_runner_output: ModelRunnerOutput
    ):
        blocks = getattr(model_runner_output, "block_tokens", {})
        drafts = scheduler_output.scheduled_spec_decode_tokens
        # NOTE: the drafts were a block, not speculation: no acceptance accounting
        base = dataclasses.replace(scheduler_output, scheduled_spec_decode_tokens={})
        outputs = super().update_from_output(base, model_runner_output)
        for req_id in scheduler_output.num_scheduled_tokens:
            request = self.requests.get(req_id)
            if request is None or request.is_finished():
                continue
            if req_id in blocks:
                self._blocks[req_id] = blocks[req_id]
            elif req_id in drafts:
                self._blocks.pop(req_id, None)
            geo = self._geo[req_id]
            committed = self._committed.get(req_id, request.num_tokens)
            request.num_computed_tokens = self.layout.rollback(
                geo, request.num_computed_tokens, committed, request.num_tokens, req_id not in self._blocks
            )
        self._attach_stats(outputs)
        return outputs

    def _attach_stats(self, outputs) -> None:
        """Puts each running request's counts so far on its output (finished ones got them
        from `_free_request`): a stop string makes that output the last one."""
        for eco in outputs.values():
            for out in eco.outputs:
                request = self.requests.get(out.request_id)
                if request is not None and out.request_id in self._stats:
                    out.kv_transfer_params = dict(out.kv_transfer_params or {}, **{STATS_KEY: self._stats_of(request)})
