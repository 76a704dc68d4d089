"""The denoising model runner: vLLM's CPU runner with the core policy in place of the sampler.

Per step, for every request whose block was scheduled as drafts (`scheduled_spec_decode_tokens`):
its B block rows are the logits rows (`_prepare_inputs`), and `sample_tokens` runs one
`policies.step` over all such requests at once. A finished block is returned as the
request's sampled tokens (and written into the runner's own token bookkeeping, as the
stock `_bookkeeping_sync` does for sampled tokens); an unfinished one goes back to the
scheduler in `DllmRunnerOutput.block_tokens`. Prefill chunks and commit forwards need no
logits and return nothing.

Attention: every query the dLLM scheduler builds covers one block (a prefill block, a
denoising step, a commit), so making each query non-causal over the paged KV cache gives
exactly block-causal attention. The runner wraps each attention metadata builder's
`build` to pass `causal=False` (the CPU backend supports non-causal queries with a cache).

vLLM internals relied on: `GPUModelRunner._update_states`, `_prepare_inputs` (its return value and
`query_start_loc`), `execute_model_state` (`ExecuteModelState`), `input_batch`
(`req_ids`, `num_computed_tokens_cpu`, `num_tokens_no_spec`, `token_ids_cpu`,
`is_token_ids`), `attn_groups[..].metadata_builders`, `CommonAttentionMetadata.causal`.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from vllm.v1.worker.cpu_model_runner import CPUModelRunner

from ..core import policies
from .block_state import RequestBlock, row, stack, start_block
from .decode_params import decode_config
from .outputs import DllmRunnerOutput
from .serve_spec import ServeSpec


def _non_causal(build):
    def wrapped(common_prefix_len, common_attn_metadata, *args, **kwargs):
        cm = dataclasses.replace(common_attn_metadata, causal=False)
        return build(common_prefix_len, cm, *args, **kwargs)

    return wrapped


class DllmCPUModelRunner(CPUModelRunner):
    def __init__(self, vllm_config, device: torch.device) -> None:
        super().__init__(vllm_config, device)
        self.dllm = ServeSpec.from_model_dir(vllm_config.model_config.model)
        self._blocks: dict[str, RequestBlock] = {}
        self._steps_done: dict[str, int] = {}  # req -> policy steps so far (the RNG counter)
        self._denoising: list[tuple[str, int]] = []  # this step: (req_id, batch index)

    def initialize_kv_cache(self, kv_cache_config, *args, **kwargs) -> None:
        super().initialize_kv_cache(kv_cache_config, *args, **kwargs)
        for groups in self.attn_groups:
            for group in groups:
                for builder in group.metadata_builders:
                    builder.build = _non_causal(builder.build)

    def _update_states(self, scheduler_output):
        # NOTE: finished (and aborted) ids also arrive in steps that schedule no tokens
        for req_id in scheduler_output.finished_req_ids:
            self._blocks.pop(req_id, None)
            self._steps_done.pop(req_id, None)
        return super()._update_states(scheduler_output)

    def _prepare_inputs(self, scheduler_output, num_scheduled_tokens: np.ndarray):
        _, spec_meta, max_sampled = super()._prepare_inputs(scheduler_output, num_scheduled_tokens)
        drafts = scheduler_output.scheduled_spec_decode_tokens
        starts = self.query_start_loc.np
        self._denoising, rows = [], []
        for i, req_id in enumerate(self.input_batch.req_ids):
            if req_id in drafts:
                self._denoising.append((req_id, i))
                rows.extend(range(int(starts[i]), int(starts[i]) + int(num_scheduled_tokens[i])))
        # NOTE: a step without denoising rows still computes one (unused) logits row
        logits_indices = torch.tensor(rows or [0], dtype=torch.long, device=self.device)
        return logits_indices, spec_meta, max_sampled

    @torch.inference_mode()
    def sample_tokens(self, grammar_output):
        if self.execute_model_state is None:
            return super().sample_tokens(grammar_output)
        logits = self.execute_model_state.logits
        self.execute_model_state = None
        kv_connector_output, self.kv_connector_output = self.kv_connector_output, None
        sampled: list[list[int]] = [[] for _ in self.input_batch.req_ids]
        block_tokens: dict[str, list[int]] = {}
        if self._denoising:
            self._denoise(logits, sampled, block_tokens)
        return DllmRunnerOutput(
            req_ids=self.input_batch.req_ids.copy(),
            req_id_to_index=self.input_batch.req_id_to_index.copy(),
            sampled_token_ids=sampled,
            kv_connector_output=kv_connector_output,
            block_tokens=block_tokens,
        )

    def _block_of(self, req_id: str, i: int) -> RequestBlock:
        """The request's block, (re)started when the scheduler's block differs from ours."""
        start = int(self.input_batch.num_computed_tokens_cpu[i])
        committed = int(self.input_batch.num_tokens_no_spec[i])
        B = self.dllm.block
        tokens = torch.from_numpy(self.input_batch.token_ids_cpu[i, start : start + B].astype(np.int64))[None]
        block = self._blocks.get(req_id)
        if block is not None and block.start == start and torch.equal(block.state.tokens, tokens):
            return block
        editable = (torch.arange(B) >= committed - start)[None]  # [1, B]: prompt / committed stay
        decode = decode_config(self.requests[req_id].sampling_params, self.dllm.family.spec)
        block = start_block(
            start, tokens, editable, decode, self.dllm.eos_ids, self.dllm.mask_id,
            self._steps_done.get(req_id, 0),
        )
        self._blocks[req_id] = block
        return block

    def _denoise(self, logits: torch.Tensor, sampled: list[list[int]], block_tokens: dict[str, list[int]]) -> None:
        B = self.dllm.block
        blocks = [self._block_of(req_id, i) for req_id, i in self._denoising]
        state = stack(blocks)
        params = policies.ParamBatch.from_configs([b.decode for b in blocks], self.dllm.eos_ids, logits.device)
        out = policies.step(logits.float().view(len(blocks), B, -1), state, params, self.dllm.mask_id)  # [R, B, V]
        state.tokens = out.tokens
        state.step += 1
        state.rng_offset += 1
        done = out.done.tolist()
        for r, (req_id, i) in enumerate(self._denoising):
            self._steps_done[req_id] = self._steps_done.get(req_id, 0) + 1
            block = blocks[r]
            block.state = row(state, r)
            committed = int(self.input_batch.num_tokens_no_spec[i])
            new = out.tokens[r, committed - block.start :].tolist()
            if done[r]:
                sampled[i] = new
                self._commit(req_id, i, new)
                del self._blocks[req_id]
            else:
                block_tokens[req_id] = new

    def _commit(self, req_id: str, i: int, new: list[int]) -> None:
        """The runner-side bookkeeping the stock sampler path does for sampled tokens."""
        lo = int(self.input_batch.num_tokens_no_spec[i])
        hi = lo + len(new)
        self.input_batch.token_ids_cpu[i, lo:hi] = new
        self.input_batch.is_token_ids[i, lo:hi] = True
        self.input_batch.num_tokens_no_spec[i] = hi
        self.requests[req_id].output_token_ids.extend(new)
