"""The denoising scheduler: vLLM's scheduler with a request's current block carried as draft tokens.

Life of a request (block B, blocks aligned to position 0, `c` = committed tokens =
prompt + output, `s` = start of the block holding position c):
1. prefill: the complete blocks [0, s) are computed one block per chunk (each chunk a
   non-causal query, so the KV is block-causal); a block is scheduled whole or not at all.
2. denoise: with num_computed == s, the block's undecided positions [c, s + B) become the
   request's `spec_token_ids`, so the stock scheduler schedules exactly [s, s + B),
   allocates its slots and passes the tokens to the runner, which runs one policy step.
   `update_from_output` rolls num_computed back to s, so the next step rewrites the same
   KV slots with the updated block.
3. when the policy finishes the block, the runner returns its new tokens as ordinary
   sampled tokens: the stock code appends them, checks stops (EOS, stop ids, max_tokens)
   and streams them. c is now s + B > num_computed, so the stock scheduler runs [s, s + B)
   once more with the final tokens (the commit forward, writing their final KV), then 2.
A prompt tail that is not a whole block is part of the first block. A request admitted
with c < B is first scheduled for its c prompt tokens (the waiting queue cannot carry
drafts); that KV is rolled back and rewritten by the first denoising step.

vLLM internals relied on: `Scheduler.schedule` / `update_from_output` /
`_free_request` / `_preempt_request`, the chunk-size hook `_mamba_block_aligned_split`
(enabled through `need_mamba_block_aligned_split`; dLLMs have no Mamba layers), and
`num_sampled_tokens_per_step` (0: no bonus token per step).
"""
from __future__ import annotations

import dataclasses

from vllm.v1.core.sched.output import SchedulerOutput
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.request import Request

from .serve_spec import ServeSpec


class DllmScheduler(Scheduler):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.dllm = ServeSpec.from_model_dir(self.vllm_config.model_config.model)
        # NOTE: a denoising step appends no sampled token; it only rewrites the block
        self.num_sampled_tokens_per_step = 0
        # NOTE: routes every chunk size through `_mamba_block_aligned_split` below
        self.need_mamba_block_aligned_split = True
        self._blocks: dict[str, list[int]] = {}  # req -> undecided part of its block
        self._committed: dict[str, int] = {}  # req -> committed tokens when last scheduled

    # ----- admission and cleanup -----
    def add_request(self, request: Request) -> None:
        params = request.sampling_params
        if params is not None and not params.ignore_eos:
            # the family's stops (EOS, end-of-turn) end generation, as in the reference
            params.stop_token_ids = sorted(set(params.stop_token_ids or ()) | set(self.dllm.eos_ids))
        # NOTE: every block is denoised whole, so the output may only reach the last
        # block boundary within max_model_len (vLLM already caps max_tokens at max_model_len)
        room = self.dllm.floor(self.max_model_len) - request.num_prompt_tokens
        if room >= 1:
            request.max_tokens = min(request.max_tokens, room)
        super().add_request(request)

    def _free_request(self, request: Request, delay_free_blocks: bool = False):
        self._blocks.pop(request.request_id, None)
        self._committed.pop(request.request_id, None)
        return super()._free_request(request, delay_free_blocks)

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
        return out

    def _arm_block(self, request: Request) -> None:
        """Puts the request's block into its drafts when it is ready to denoise."""
        committed = request.num_tokens
        start = self.dllm.floor(committed)
        if request.num_computed_tokens != start:
            return
        if start + self.dllm.block > self.max_model_len:
            return  # only when the prompt itself ends in the last partial block (see add_request)
        tail = self._blocks.get(request.request_id)
        if tail is None:
            tail = [self.dllm.mask_id] * (start + self.dllm.block - committed)
        request.spec_token_ids = list(tail)

    def _mamba_block_aligned_split(
        self,
        request: Request,
        num_new_tokens: int,
        num_new_local_computed_tokens: int = 0,
        num_external_computed_tokens: int = 0,
    ) -> int:
        """Clips a chunk to whole blocks: a denoising block or one prefill block, or nothing."""
        start = request.num_computed_tokens + num_new_local_computed_tokens + num_external_computed_tokens
        if request.spec_token_ids:
            needed = request.num_tokens + len(request.spec_token_ids) - start
            return num_new_tokens if num_new_tokens >= needed else 0
        if start < self.dllm.floor(request.num_tokens):
            boundary = self.dllm.next_boundary(start)
            return boundary - start if start + num_new_tokens >= boundary else 0
        # the partial tail of a newly admitted / resumed request (rolled back afterwards)
        return num_new_tokens

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
            committed = self._committed.get(req_id, request.num_tokens)
            # KV is final only for whole blocks of tokens committed before this step
            keep = self.dllm.floor(min(request.num_computed_tokens, committed))
            request.num_computed_tokens = min(request.num_computed_tokens, keep)
            if req_id in blocks:
                self._blocks[req_id] = blocks[req_id]
            elif req_id in drafts:
                self._blocks.pop(req_id, None)
        return outputs
