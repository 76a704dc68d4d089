"""The denoising model runners: vLLM's V1 runners (CPU and GPU) with the core policy in place of the sampler.

All dLLM logic lives in `DllmRunnerMixin`; `DllmCPUModelRunner` and `DllmGPUModelRunner`
put it in front of vLLM's `CPUModelRunner` / `GPUModelRunner` (the V1 runner: Model
Runner V2 has no hook for it), so both platforms run the same code.

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

Device work per step: the policy state of each request stays on the runner's device
between steps; a step's `ParamBatch` is reused while the batch of each window width keeps
its requests; everything the host needs back (window tokens, done flags, AR tokens)
crosses to the host in one transfer (`_to_host`).

Attention: every query the dLLM scheduler builds is non-causal over the paged KV cache,
and is attended as the layout's segments (`Layout.segments`). Block-causal families: a
query covering several blocks (the prompt's whole blocks at admission; a chunk or the
finished block in front of a block's first step) is cut at every block boundary, each
piece attending its block and the blocks before it: exactly the block-causal mask. Full
attention: one segment per query (in dual mode attending up to the canvas end, so the
block sees the stale suffix KV). `_prepare_inputs` turns the step's segments into a
`VirtualBatch` (one non-causal sequence per segment; None when every request is one
segment over its own query), and each attention metadata builder's `build` is wrapped
to pass `causal=False` and the virtual sequences before the builder derives anything
from them (FA3's scheduler metadata, FlexAttention's block mask), so the same metadata
serves CPU_ATTN, FLASH_ATTN, TRITON_ATTN and FLEX_ATTENTION (`virtual_batch` says how
each reads it). Builders whose persistent per-sequence buffers are sized by max_num_seqs
(FlexAttention) get them enlarged to the most sequences a step can hold.

vLLM internals relied on: `GPUModelRunner._update_states`, `_prepare_inputs` (its return value and
`query_start_loc`), `execute_model_state` (`ExecuteModelState`), `input_batch`
(`req_ids`, `num_computed_tokens_cpu`, `num_tokens_no_spec`, `token_ids_cpu`,
`is_token_ids`), `attn_groups[..].metadata_builders`, `max_num_reqs` / `max_num_tokens`, the
`CommonAttentionMetadata` fields `virtual_batch` replaces (pinned in
tests/engine_vllm/test_vllm_internals.py).
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import torch
from vllm.v1.worker.cpu_model_runner import CPUModelRunner
from vllm.v1.worker.gpu_model_runner import GPUModelRunner

from ..core import policies
from ..core.policies.base import BlockState, StepOutput
from .block_state import RequestBlock, row, stack, start_window, window_has_masks
from .layouts import Geometry, Segment
from .outputs import DllmRunnerOutput
from .request_options import RequestSettings, settings
from .serve_spec import ServeSpec
from .virtual_batch import VirtualBatch, capacity, fit_sequence_buffers

Entry = tuple[str, int, int]  # (req_id, batch index, first logits row)


class _Group(NamedTuple):
    """One `policies.step` call of a step: the requests of one window width."""

    entries: list[Entry]
    blocks: list[RequestBlock]
    state: BlockState  # [R, W] on the runner's device, already advanced by the step
    out: StepOutput


def on_device(state: BlockState, device: torch.device) -> BlockState:
    """The state with every tensor on `device` (no copy for tensors already there)."""
    moved = {f.name: getattr(state, f.name).to(device) for f in dataclasses.fields(state) if f.name != "extra"}
    return BlockState(**moved, extra={k: v.to(device) for k, v in state.extra.items()})


class DllmRunnerMixin:
    """The denoising step on top of a vLLM V1 model runner (put it first in the bases)."""

    def __init__(self, vllm_config, device: torch.device) -> None:
        super().__init__(vllm_config, device)
        self.dllm = ServeSpec.from_vllm_config(vllm_config)
        self.layout = self.dllm.layout
        self._settings: dict[str, RequestSettings] = {}
        self._blocks: dict[str, RequestBlock] = {}
        self._steps_done: dict[str, int] = {}  # req -> policy steps so far (the RNG counter)
        self._denoising: list[Entry] = []  # this step: (req_id, batch index, first row)
        self._ar: list[Entry] = []  # this step: (req_id, batch index, row) of AR tokens
        # this step's queries as non-causal virtual sequences (None: one per request as they are)
        self._virtual: VirtualBatch | None = None
        # ((req_id, DecodeConfig), ...) of one width group -> its ParamBatch, kept for the groups
        # of the last step only (a batch composition usually lasts many steps)
        self._params: dict[tuple, policies.ParamBatch] = {}

    def initialize_kv_cache(self, kv_cache_config, *args, **kwargs) -> None:
        super().initialize_kv_cache(kv_cache_config, *args, **kwargs)
        block = self.dllm.block if self.dllm.family.spec.attention == "block_causal" else None
        seqs = capacity(self.max_num_reqs, self.max_num_tokens, block)
        for groups in self.attn_groups:
            for group in groups:
                for builder in group.metadata_builders:
                    fit_sequence_buffers(builder, seqs)
                    builder.build = self._non_causal(builder.build)

    def _non_causal(self, build):
        def wrapped(common_prefix_len, common_attn_metadata, *args, **kwargs):
            changes: dict = {"causal": False}
            if self._virtual is not None:
                changes.update(self._virtual.metadata_changes(common_attn_metadata))
            return build(common_prefix_len, dataclasses.replace(common_attn_metadata, **changes), *args, **kwargs)

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
        self._denoising, self._ar = [], []
        rows: list[int] = []
        segments: list[list[Segment]] = []  # per batch row: how its query is attended
        for i, req_id in enumerate(self.input_batch.req_ids):
            n = int(num_scheduled_tokens[i])
            q_lo = int(self.input_batch.num_computed_tokens_cpu[i])
            if n == 0:
                segments.append([(q_lo, q_lo, q_lo)])
                continue
            geo = self._request(req_id).geometry
            segments.append(self.layout.segments(geo, q_lo, q_lo + n))
            first, committed = int(starts[i]), int(self.input_batch.num_tokens_no_spec[i])
            if req_id in drafts:
                block = self._block_of(req_id, i, geo)
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
        self._virtual = VirtualBatch.from_segments(segments)
        # NOTE: a step without logits rows still computes one (unused) row
        logits_indices = torch.tensor(rows or [0], dtype=torch.long, device=self.device)
        return logits_indices, spec_meta, max_sampled

    @torch.inference_mode()
    def sample_tokens(self, grammar_output):
        if self.execute_model_state is None:
            return super().sample_tokens(grammar_output)
        logits = self.execute_model_state.logits
        self.execute_model_state = None
        self._virtual = None  # NOTE: used by this step's metadata only, never by a later dummy run
        kv_connector_output, self.kv_connector_output = self.kv_connector_output, None
        sampled: list[list[int]] = [[] for _ in self.input_batch.req_ids]
        block_tokens: dict[str, list[int]] = {}
        groups = self._policy_steps(logits)
        ar_tokens = self._ar_tokens(logits)
        windows, ar_host = self._to_host(groups, ar_tokens)
        for group, (tokens, done) in zip(groups, windows):
            self._apply(group, tokens, done, sampled, block_tokens)
        for (req_id, i, _), token in zip(self._ar, ar_host):
            sampled[i] = [token]
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
        if block is not None and block.lo == lo:
            if torch.equal(block.tokens, tokens):
                return block
            # NOTE: the scheduler restarted the block (the request was preempted): its steps
            # are redone with the RNG counters they had, as in the reference
            self._steps_done[req_id] = block.first_step
        decode = self._request(req_id).decode
        block = RequestBlock(lo=lo, hi=hi, tokens=tokens, committed=committed, decode=decode,
                             first_step=self._steps_done.get(req_id, 0))
        if not self._next_window(req_id, block, geo, lo):
            raise RuntimeError(f"request {req_id}: block [{lo}, {hi}) was scheduled with nothing to denoise")
        self._blocks[req_id] = block
        return block

    def _next_window(self, req_id: str, block: RequestBlock, geo: Geometry, after: int) -> bool:
        """Starts the policy on the first window at or after `after` with masks; False if none.
        `block.tokens` stays on the host (the scheduler's copy); the policy state goes to the
        runner's device once per window."""
        for w_lo, w_hi in self.layout.windows(geo, block.lo, block.hi):
            if w_lo >= after and window_has_masks(block, w_lo, w_hi, self.dllm.mask_id):
                start_window(
                    block, w_lo, w_hi, self.dllm.eos_ids, self.dllm.mask_id,
                    self._steps_done.get(req_id, 0), self.layout.schedule_len(geo, block.lo, block.hi),
                )
                block.state = on_device(block.state, self.device)
                return True
        return False

    def _param_batch(self, entries: list[Entry], blocks: list[RequestBlock], used: dict) -> policies.ParamBatch:
        """The group's ParamBatch, rebuilt only when the group's requests change."""
        key = tuple((req_id, b.decode) for (req_id, _, _), b in zip(entries, blocks))
        params = self._params.get(key)
        if params is None:
            params = policies.ParamBatch.from_configs([b.decode for b in blocks], self.dllm.eos_ids, self.device)
        used[key] = params
        return params

    def _policy_steps(self, logits: torch.Tensor) -> list[_Group]:
        """One policy step per window width, on the device; nothing is read back here."""
        by_width: dict[int, list[Entry]] = {}
        for entry in self._denoising:
            block = self._blocks[entry[0]]
            by_width.setdefault(block.w_hi - block.w_lo, []).append(entry)
        used: dict[tuple, policies.ParamBatch] = {}
        groups: list[_Group] = []
        for width, entries in by_width.items():
            blocks = [self._blocks[req_id] for req_id, _, _ in entries]
            index = torch.tensor([r + k for _, _, r in entries for k in range(width)], device=logits.device)
            group_logits = logits.index_select(0, index).float().view(len(entries), width, -1)  # [R, W, V]
            state = stack([b.state for b in blocks])
            out = policies.step(group_logits, state, self._param_batch(entries, blocks, used), self.dllm.mask_id)
            state.tokens = out.tokens
            state.step += 1
            state.rng_offset += 1
            groups.append(_Group(entries, blocks, state, out))
        if groups:
            self._params = used
        return groups

    def _ar_tokens(self, logits: torch.Tensor) -> torch.Tensor | None:
        """Fast-dLLM v2's next tokens, [n_ar] on the device: argmax of each AR row."""
        if not self._ar:
            return None
        last = logits[[r for _, _, r in self._ar]].float()  # [n_ar, V], a copy
        # NOTE: never the mask (the reference's rule): it would be re-read as undecided
        last[:, self.dllm.mask_id] = float("-inf")
        return last.argmax(dim=-1)

    def _to_host(
        self, groups: list[_Group], ar_tokens: torch.Tensor | None
    ) -> tuple[list[tuple[list[list[int]], list[bool]]], list[int]]:
        """Window tokens [R, W] and done flags [R] of every group, and the AR tokens, as lists.

        NOTE: the step's one device->host transfer (the step's only sync on a GPU): everything
        the host bookkeeping and the scheduler need goes in one flat copy."""
        pieces = [p for g in groups for p in (g.out.tokens.reshape(-1), g.out.done.to(torch.long))]
        if ar_tokens is not None:
            pieces.append(ar_tokens.to(torch.long))
        if not pieces:
            return [], []
        flat = torch.cat(pieces).tolist()
        windows, at = [], 0
        for g in groups:
            rows, width = g.out.tokens.shape
            tokens = [flat[at + r * width : at + (r + 1) * width] for r in range(rows)]
            at += rows * width
            windows.append((tokens, [bool(d) for d in flat[at : at + rows]]))
            at += rows
        return windows, flat[at:]

    def _apply(
        self, group: _Group, tokens: list[list[int]], done: list[bool],
        sampled: list[list[int]], block_tokens: dict[str, list[int]],
    ) -> None:
        """Host bookkeeping of one group after its step."""
        for r, (req_id, i, _) in enumerate(group.entries):
            block = group.blocks[r]
            block.state = row(group.state, r)
            block.tokens[0, block.w_lo - block.lo : block.w_hi - block.lo] = torch.tensor(tokens[r])
            self._steps_done[req_id] = self._steps_done.get(req_id, 0) + 1
            self._advance(req_id, i, block, done[r], sampled, block_tokens)

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


class DllmCPUModelRunner(DllmRunnerMixin, CPUModelRunner):
    """vLLM's CPU runner with the denoising step."""


class DllmGPUModelRunner(DllmRunnerMixin, GPUModelRunner):
    """vLLM's GPU runner (V1) with the denoising step."""
