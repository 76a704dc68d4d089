"""The denoising model runner: vLLM's CPU runner with the core policy in place of the sampler.

Per step, for every request whose block was scheduled as drafts (`scheduled_spec_decode_tokens`):
the logits rows that predict its policy window (`Layout.sources`: the block's own rows,
or the rows before them for shifted families) are selected in `_prepare_inputs`, and
`sample_tokens` runs `policies.step` once per window width over all such requests. A
finished block is returned as the request's sampled tokens (and written into the
runner's own token bookkeeping, as the stock `_bookkeeping_sync` does for sampled
tokens); an unfinished one goes back to the scheduler in `DllmRunnerOutput.block_tokens`.
Prefill chunks and commit forwards need no logits and return nothing, except Fast-dLLM
v2's: a chunk that ends at a block boundary at the committed end gives the next token
(argmax of its last row, never the mask).

Attention: every query the dLLM scheduler builds is non-causal over the paged KV cache.
Block-causal families: a query only ever covers one block, so attention is exactly
block-causal. Full attention: a query covers the canvas (or, in dual mode, the block,
whose attended length is then raised to the canvas end so it sees the stale suffix KV).
The runner wraps each attention metadata builder's `build` to pass `causal=False` and
those lengths (the CPU backend supports non-causal queries with a cache).

vLLM internals relied on: `GPUModelRunner._update_states`, `_prepare_inputs` (its return value and
`query_start_loc`), `execute_model_state` (`ExecuteModelState`), `input_batch`
(`req_ids`, `num_computed_tokens_cpu`, `num_tokens_no_spec`, `token_ids_cpu`,
`is_token_ids`), `attn_groups[..].metadata_builders`, `CommonAttentionMetadata.causal` /
`seq_lens` / `max_seq_len`.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch
from vllm.v1.worker.cpu_model_runner import CPUModelRunner

from ..core import policies
from .block_state import RequestBlock, row, stack, start_window, window_has_masks
from .layouts import Geometry
from .outputs import DllmRunnerOutput
from .request_options import RequestSettings, settings
from .serve_spec import ServeSpec


class DllmCPUModelRunner(CPUModelRunner):
    def __init__(self, vllm_config, device: torch.device) -> None:
        super().__init__(vllm_config, device)
        self.dllm = ServeSpec.from_vllm_config(vllm_config)
        self.layout = self.dllm.layout
        self._settings: dict[str, RequestSettings] = {}
        self._blocks: dict[str, RequestBlock] = {}
        self._steps_done: dict[str, int] = {}  # req -> policy steps so far (the RNG counter)
        self._denoising: list[tuple[str, int, int]] = []  # this step: (req_id, batch index, first row)
        self._ar: list[tuple[str, int, int]] = []  # this step: (req_id, batch index, row) of AR tokens
        self._seq_lens: dict[int, int] = {}  # this step: batch index -> attended length (dual mode)

    def initialize_kv_cache(self, kv_cache_config, *args, **kwargs) -> None:
        super().initialize_kv_cache(kv_cache_config, *args, **kwargs)
        for groups in self.attn_groups:
            for group in groups:
                for builder in group.metadata_builders:
                    builder.build = self._non_causal(builder.build)

    def _non_causal(self, build):
        def wrapped(common_prefix_len, common_attn_metadata, *args, **kwargs):
            cm = common_attn_metadata
            changes: dict = {"causal": False}
            if self._seq_lens:
                seq = cm.seq_lens.clone()
                for i, length in self._seq_lens.items():
                    seq[i] = length
                changes.update(seq_lens=seq, max_seq_len=max(cm.max_seq_len, max(self._seq_lens.values())))
            return build(common_prefix_len, dataclasses.replace(cm, **changes), *args, **kwargs)

        return wrapped

    def _update_states(self, scheduler_output):
        # NOTE: finished (and aborted) ids also arrive in steps that schedule no tokens
        for req_id in scheduler_output.finished_req_ids:
            for table in (self._blocks, self._steps_done, self._settings):
                table.pop(req_id, None)
        return super()._update_states(scheduler_output)

    def _request(self, req_id: str) -> RequestSettings:
        found = self._settings.get(req_id)
        if found is None:
            state = self.requests[req_id]
            found = self._settings[req_id] = settings(state.sampling_params, self.dllm, state.num_prompt_tokens)
        return found

    def _prepare_inputs(self, scheduler_output, num_scheduled_tokens: np.ndarray):
        _, spec_meta, max_sampled = super()._prepare_inputs(scheduler_output, num_scheduled_tokens)
        drafts = scheduler_output.scheduled_spec_decode_tokens
        starts = self.query_start_loc.np
        self._denoising, self._ar, self._seq_lens = [], [], {}
        rows: list[int] = []
        for i, req_id in enumerate(self.input_batch.req_ids):
            n = int(num_scheduled_tokens[i])
            if n == 0:
                continue
            geo = self._request(req_id).geometry
            q_lo, first = int(self.input_batch.num_computed_tokens_cpu[i]), int(starts[i])
            committed = int(self.input_batch.num_tokens_no_spec[i])
            if req_id in drafts:
                block = self._block_of(req_id, i, geo)
                attended = self.layout.attended(geo, q_lo + n)
                if attended != q_lo + n:
                    self._seq_lens[i] = attended
                sources = self.layout.sources(geo, block.lo, block.w_lo, block.w_hi)
                if min(sources) < q_lo or max(sources) >= q_lo + n:
                    raise RuntimeError(
                        f"request {req_id}: rows of positions [{min(sources)}, {max(sources)}] are "
                        f"outside its query [{q_lo}, {q_lo + n})"
                    )
                self._denoising.append((req_id, i, len(rows)))
                rows.extend(first + p - q_lo for p in sources)
            elif self.layout.ar_token and q_lo + n == committed and committed % geo.block == 0:
                self._ar.append((req_id, i, len(rows)))
                rows.append(first + n - 1)
        # NOTE: a step without logits rows still computes one (unused) row
        logits_indices = torch.tensor(rows or [0], dtype=torch.long, device=self.device)
        return logits_indices, spec_meta, max_sampled

    @torch.inference_mode()
    def sample_tokens(self, grammar_output):
        if self.execute_model_state is None:
            return super().sample_tokens(grammar_output)
        logits = self.execute_model_state.logits
        self.execute_model_state = None
        self._seq_lens = {}  # NOTE: used by this step's metadata only, never by a later dummy run
        kv_connector_output, self.kv_connector_output = self.kv_connector_output, None
        sampled: list[list[int]] = [[] for _ in self.input_batch.req_ids]
        block_tokens: dict[str, list[int]] = {}
        if self._denoising:
            self._denoise(logits, sampled, block_tokens)
        for req_id, i, r in self._ar:
            last = logits[r].float().clone()  # [V]
            # NOTE: never the mask (the reference's rule): it would be re-read as undecided
            last[self.dllm.mask_id] = float("-inf")
            sampled[i] = [int(last.argmax())]
            self._commit(req_id, i, sampled[i])
        return DllmRunnerOutput(
            req_ids=self.input_batch.req_ids.copy(),
            req_id_to_index=self.input_batch.req_id_to_index.copy(),
            sampled_token_ids=sampled,
            kv_connector_output=kv_connector_output,
            block_tokens=block_tokens,
        )

    def _block_of(self, req_id: str, i: int, geo: Geometry) -> RequestBlock:
        """The request's block, (re)started when the scheduler's block differs from ours."""
        committed = int(self.input_batch.num_tokens_no_spec[i])
        lo, hi = self.layout.span(geo, committed)
        tokens = torch.from_numpy(self.input_batch.token_ids_cpu[i, lo:hi].astype(np.int64))[None]  # [1, B]
        block = self._blocks.get(req_id)
        if block is not None and block.lo == lo and torch.equal(block.tokens, tokens):
            return block
        decode = self._request(req_id).decode
        block = RequestBlock(lo=lo, hi=hi, tokens=tokens, committed=committed, decode=decode)
        if not self._next_window(req_id, block, geo, lo):
            raise RuntimeError(f"request {req_id}: block [{lo}, {hi}) was scheduled with nothing to denoise")
        self._blocks[req_id] = block
        return block

    def _next_window(self, req_id: str, block: RequestBlock, geo: Geometry, after: int) -> bool:
        """Starts the policy on the first window at or after `after` with masks; False if none."""
        for w_lo, w_hi in self.layout.windows(geo, block.lo, block.hi):
            if w_lo >= after and window_has_masks(block, w_lo, w_hi, self.dllm.mask_id):
                start_window(
                    block, w_lo, w_hi, self.dllm.eos_ids, self.dllm.mask_id,
                    self._steps_done.get(req_id, 0), self.layout.schedule_len(geo, block.lo, block.hi),
                )
                return True
        return False

    def _denoise(self, logits: torch.Tensor, sampled: list[list[int]], block_tokens: dict[str, list[int]]) -> None:
        by_width: dict[int, list[tuple[str, int, int]]] = {}
        for entry in self._denoising:
            block = self._blocks[entry[0]]
            by_width.setdefault(block.w_hi - block.w_lo, []).append(entry)
        for width, entries in by_width.items():
            blocks = [self._blocks[req_id] for req_id, _, _ in entries]
            index = torch.tensor([r + k for _, _, r in entries for k in range(width)], device=logits.device)
            group_logits = logits.index_select(0, index).float().view(len(entries), width, -1)  # [R, W, V]
            state = stack([b.state for b in blocks])
            params = policies.ParamBatch.from_configs([b.decode for b in blocks], self.dllm.eos_ids, logits.device)
            out = policies.step(group_logits, state, params, self.dllm.mask_id)
            state.tokens = out.tokens
            state.step += 1
            state.rng_offset += 1
            done = out.done.tolist()
            for r, (req_id, i, _) in enumerate(entries):
                block = blocks[r]
                block.state = row(state, r)
                block.tokens[:, block.w_lo - block.lo : block.w_hi - block.lo] = out.tokens[r]
                self._steps_done[req_id] = self._steps_done.get(req_id, 0) + 1
                self._advance(req_id, i, block, bool(done[r]), sampled, block_tokens)

    def _advance(
        self, req_id: str, i: int, block: RequestBlock, window_done: bool,
        sampled: list[list[int]], block_tokens: dict[str, list[int]],
    ) -> None:
        """After a step: next window, finished block (returned as sampled tokens), or unfinished."""
        geo = self._settings[req_id].geometry
        new = block.tokens[0, block.committed - block.lo :].tolist()
        stop = self._early_stop(req_id, new) if self.layout.early_stop else None
        finished = stop is not None
        if stop is not None:
            new = new[: stop + 1]
        elif window_done:
            finished = not self._next_window(req_id, block, geo, block.w_hi)
        if finished:
            sampled[i] = new
            self._commit(req_id, i, new)
            del self._blocks[req_id]
        else:
            block_tokens[req_id] = new

    def _early_stop(self, req_id: str, new: list[int]) -> int | None:
        """Index in `new` of a stop id with no mask before it (Fast-dLLM v2 ends there)."""
        if self.requests[req_id].sampling_params.ignore_eos:
            return None
        stops = set(self.dllm.eos_ids)
        for k, tok in enumerate(new):
            if tok == self.dllm.mask_id:
                return None
            if tok in stops:
                return k
        return None

    def _commit(self, req_id: str, i: int, new: list[int]) -> None:
        """The runner-side bookkeeping the stock sampler path does for sampled tokens."""
        lo = int(self.input_batch.num_tokens_no_spec[i])
        hi = lo + len(new)
        self.input_batch.token_ids_cpu[i, lo:hi] = new
        self.input_batch.is_token_ids[i, lo:hi] = True
        self.input_batch.num_tokens_no_spec[i] = hi
        self.requests[req_id].output_token_ids.extend(new)
