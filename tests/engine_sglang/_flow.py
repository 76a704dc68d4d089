"""Test helper: SGLang's dLLM block flow around a real `DllmAlgorithm.run`, with a stand-in model runner.

What is SGLang's own code here: `DllmAlgorithm.run` (both `_run_sync` and `_run_fdfo`),
`ForwardBatch`, `SamplingBatchInfo`, `ModelRunnerOutput`, `LogitsProcessorOutput`.
What is emulated (SGLang's scheduler bookkeeping, `dllm/mixin/req.py`): blocks aligned to
absolute position 0 (`dllm_incomplete_ids` carries an FDFO block between rounds); each round a request contributes the block after its committed KV:
whole prompt blocks (no mask: `run` returns after one forward), then committed tokens plus
masks up to the block end; a finished block's tokens become output and the request stops
after a block holding a stop id or once max_tokens exist.
The stand-in runner plays SGLang's paged KV: every forward of a block rewrites that
block's KV in the request's slots (the reference network's cache truncated to the block
start, then appended) and attends over committed prefix + block (block-causal).
"""
from __future__ import annotations

import pytest

pytest.importorskip("sglang")

from dataclasses import dataclass, field  # noqa: E402

import torch  # noqa: E402
from sglang.srt.layers.logits_processor import LogitsProcessorOutput  # noqa: E402
from sglang.srt.model_executor.forward_batch_info import ForwardBatch, ForwardMode  # noqa: E402
from sglang.srt.model_executor.model_runner import ModelRunnerOutput  # noqa: E402
from sglang.srt.sampling.sampling_batch_info import SamplingBatchInfo  # noqa: E402

from dllm_backend.core.reference.generators._block_common import block_causal_mask  # noqa: E402


class StandInRunner:
    """`forward(forward_batch)` -> SGLang's ModelRunnerOutput with full_logits [bs * B, V]."""

    def __init__(self, model, block: int) -> None:
        self.model = model
        self.block = block
        self.caches: dict[int, object] = {}
        self.forwards = 0

    @torch.inference_mode()
    def forward(self, forward_batch: ForwardBatch, pp_proxy_tensors=None) -> ModelRunnerOutput:
        bs = forward_batch.batch_size
        ids = forward_batch.input_ids.view(bs, -1)  # [bs, B]
        pos = forward_batch.positions.view(bs, -1)
        rows = []
        for i in range(bs):
            slot = int(forward_batch.req_pool_indices[i])
            cache = self.caches.setdefault(slot, self.model.new_cache())
            lo, hi = int(pos[i, 0]), int(pos[i, -1]) + 1
            cache.truncate(lo)  # the block's slots are rewritten by every forward
            mask = block_causal_mask(lo, hi, hi, self.block, ids.device)
            rows.append(self.model(ids[i : i + 1], pos[i : i + 1], mask, cache, "append")[0])
        self.forwards += 1
        full = torch.cat(rows, dim=0)  # [bs * B, V]
        return ModelRunnerOutput(
            logits_output=LogitsProcessorOutput(next_token_logits=None, full_logits=full),
            can_run_graph=False,
        )


@dataclass
class Sampling:
    """SGLang's normalised sampling params of one request (greedy: temperature 1, top_k 1)."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 1
    custom_params: dict | None = None


@dataclass
class _Req:
    rid: str
    slot: int
    prompt: list[int]
    max_tokens: int
    sampling: Sampling
    output: list[int] = field(default_factory=list)
    kv_len: int = 0
    state: object = None
    incomplete: list[int] | None = None  # FDFO: the block's tokens carried between rounds
    finished: bool = False


def sampling_info(reqs: list[_Req], vocab: int) -> SamplingBatchInfo:
    s = [r.sampling for r in reqs]
    return SamplingBatchInfo(
        temperatures=torch.tensor([[x.temperature] for x in s], dtype=torch.float),
        top_ps=torch.tensor([x.top_p for x in s], dtype=torch.float),
        top_ks=torch.tensor([x.top_k for x in s], dtype=torch.int32),
        min_ps=torch.zeros(len(s)),
        is_all_greedy=all(x.top_k == 1 for x in s),
        is_any_greedy=any(x.top_k == 1 for x in s),
        need_top_p_sampling=any(x.top_p < 1 for x in s),
        need_top_k_sampling=any(x.top_k != 1 << 30 for x in s),
        need_min_p_sampling=False,
        vocab_size=vocab,
        custom_params=[x.custom_params for x in s],
    )


def _batch(reqs: list[_Req], block: int, mask_id: int, vocab: int) -> ForwardBatch:
    ids, pos = [], []
    for r in reqs:
        committed = r.prompt + r.output
        lo = r.kv_len
        tokens = committed[lo : lo + block]
        tokens = r.incomplete or tokens + [mask_id] * (block - len(tokens))
        ids += tokens
        pos += list(range(lo, lo + block))
    bs = len(reqs)
    seq_lens = torch.tensor([r.kv_len + block for r in reqs])
    return ForwardBatch(
        forward_mode=ForwardMode.DLLM_EXTEND,
        batch_size=bs,
        input_ids=torch.tensor(ids, dtype=torch.long),
        req_pool_indices=torch.tensor([r.slot for r in reqs]),
        seq_lens=seq_lens,
        out_cache_loc=torch.arange(bs * block),
        seq_lens_sum=int(seq_lens.sum()),
        positions=torch.tensor(pos, dtype=torch.long),
        rids=[r.rid for r in reqs],
        sampling_info=sampling_info(reqs, vocab),
    )


def _commit(r: _Req, block_tokens: list[int], block: int, eos_ids: tuple[int, ...]) -> None:
    committed = len(r.prompt) + len(r.output)
    new = block_tokens[committed - r.kv_len :]
    r.output += new
    r.kv_len += block
    if any(t in eos_ids for t in new) or len(r.output) >= r.max_tokens:
        r.finished = True


def serve(
    algorithm, runner: StandInRunner, requests: list[tuple[list[int], int, Sampling]],
    mask_id: int, eos_ids: tuple[int, ...], vocab: int,
) -> list[list[int]]:
    """Runs every request to the end; returns each one's output cut at max_tokens and after
    its first stop id (the reference generators' cut)."""
    block = algorithm.block_size
    reqs = [_Req(f"req-{i}", i, list(p), m, s) for i, (p, m, s) in enumerate(requests)]
    for _ in range(10_000):
        live = [r for r in reqs if not r.finished]
        if not live:
            break
        fb = _batch(live, block, mask_id, vocab)
        states = [r.state for r in live] if algorithm.fdfo else None
        _, next_ids, accept, states_out, _ = algorithm.run(runner, fb, states)
        canvas = fb.input_ids.view(len(live), block).tolist()
        for i, r in enumerate(live):
            if algorithm.fdfo:
                if next_ids and accept[i] != block:  # still denoising: carry the state
                    r.state, r.incomplete = states_out[i], canvas[i]
                    continue
                r.state, r.incomplete = None, None
            _commit(r, canvas[i], block, eos_ids)
    return [_cut(r.output[: r.max_tokens], eos_ids) for r in reqs]


def _cut(tokens: list[int], eos_ids: tuple[int, ...]) -> list[int]:
    for i, t in enumerate(tokens):
        if t in eos_ids:
            return tokens[: i + 1]
    return tokens
