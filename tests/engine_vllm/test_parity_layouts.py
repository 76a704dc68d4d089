"""The adapter's engine-free rules: block layouts per family and the stacking of mixed-algorithm rows.

No vLLM needed: `layouts` and `block_state` import only the core.
"""
from __future__ import annotations

import torch

from dllm_backend.core import policies
from dllm_backend.core.policies.base import DecodeConfig
from dllm_backend.vllm_adapter.block_state import RequestBlock, row, stack, start_window
from dllm_backend.vllm_adapter.layouts import LAYOUTS, Geometry, StepPlan

MASK = 99
EOS = (98,)


def test_block_causal_plan_rollback_and_chunks():
    lay, geo = LAYOUTS.get("block_diffusion"), Geometry(prompt_len=7, max_tokens=10, block=4)
    # committed 7, KV of [0, 4): the block [4, 8) holds the prompt tail 4..6
    assert lay.plan(geo, 7, computed=4, fresh=True) == StepPlan(4, 8, 4, 8, 8)
    # after a denoising step KV stays for whole blocks committed before it
    assert lay.rollback(geo, computed=8, committed_before=7, committed=7, fresh=False) == 4
    # the block [4, 8) finished (committed 8): its final KV is written by the next block's
    # first step, whose query starts at 4 (the fold); the rollback after it keeps [0, 8)
    assert lay.plan(geo, 8, computed=4, fresh=True) == StepPlan(8, 12, 4, 12, 12)
    assert lay.rollback(geo, computed=12, committed_before=8, committed=8, fresh=False) == 8
    # a query starts only at a block boundary at or below the block
    assert lay.plan(geo, 8, computed=6, fresh=True) is None
    assert lay.plan(geo, 7, computed=8, fresh=True) is None
    # chunks without drafts: every whole block below the committed block that fits, in one query
    assert lay.chunk(geo, start=0, num_new_tokens=11, committed=11) == 8
    assert lay.chunk(geo, start=0, num_new_tokens=7, committed=11) == 4
    assert lay.chunk(geo, start=4, num_new_tokens=3, committed=11) == 0
    # the partial tail of a new request goes as it is (rolled back afterwards)
    assert lay.chunk(geo, start=0, num_new_tokens=3, committed=3) == 3
    # the budget does not hold a folded query [0, 12): the whole blocks in front that fit
    assert lay.front(geo, start=0, num_new_tokens=10, committed=11) == 8
    assert lay.front(geo, start=8, num_new_tokens=4, committed=11) == 0
    assert lay.room(geo, max_model_len=30) == 28 - 7
    assert lay.schedule_len(geo, 4, 8) == 4


def test_block_causal_segments_are_the_block_causal_mask():
    lay, geo = LAYOUTS.get("block_diffusion"), Geometry(prompt_len=30, max_tokens=17, block=4)
    # a one-block query is one segment attending its own end, as before
    assert lay.segments(geo, 28, 32) == [(28, 32, 32)]
    # the prompt's whole blocks plus the first block: one segment per block
    assert lay.segments(geo, 16, 32) == [(16, 20, 20), (20, 24, 24), (24, 28, 28), (28, 32, 32)]
    # a commit folded into the next block's first step
    assert lay.segments(geo, 28, 36) == [(28, 32, 32), (32, 36, 36)]
    # the partial tail of an admission: keys up to its own end only
    assert lay.segments(geo, 0, 3) == [(0, 3, 3)]
    assert lay.segments(geo, 0, 6) == [(0, 4, 4), (4, 6, 6)]
    # the segments of a query, expanded, are exactly the reference's block-causal mask
    from dllm_backend.core.reference.generators._block_common import block_causal_mask

    q_lo, q_hi = 8, 20
    mask = torch.zeros(q_hi - q_lo, q_hi, dtype=torch.bool)
    for s, e, attended in lay.segments(geo, q_lo, q_hi):
        mask[s - q_lo : e - q_lo, :attended] = True
    assert torch.equal(mask[None], block_causal_mask(q_lo, q_hi, q_hi, 4, torch.device("cpu")))


def test_fast_dllm_folds_only_before_a_block_holding_its_first_token():
    lay = LAYOUTS.get("fast_dllm_v2")
    geo = Geometry(prompt_len=70, max_tokens=41, block=32, sub_block=8)
    # prompt 70 ends inside the block [64, 96): the chunk [32, 64) folds into its first step
    assert lay.plan(geo, 70, computed=32, fresh=True) == StepPlan(64, 96, 32, 96, 96)
    # committed 96 = a block start: the block's first token is the AR token of the forward
    # that completes [0, 96), which must run alone (no query may be armed)
    assert lay.plan(geo, 96, computed=64, fresh=True) is None
    assert lay.chunk(geo, start=64, num_new_tokens=32, committed=96) == 32
    # after it, the AR token is committed (97) and the block's query starts at 96
    assert lay.plan(geo, 97, computed=96, fresh=True) == StepPlan(96, 128, 96, 128, 128)
    assert lay.segments(geo, 32, 96) == [(32, 64, 64), (64, 96, 96)]


def test_full_canvas_plans_per_cache_mode():
    lay = LAYOUTS.get("full_attention")
    exact = Geometry(prompt_len=5, max_tokens=10, block=4, cache_mode="exact", shift=True)
    prefix = Geometry(prompt_len=5, max_tokens=10, block=4, cache_mode="prefix", shift=True)
    dual = Geometry(prompt_len=5, max_tokens=10, block=4, cache_mode="dual", shift=True)
    # every mode's first step of a block is the whole prompt + canvas
    for geo in (exact, prefix, dual):
        assert lay.plan(geo, 5, computed=0, fresh=True) == StepPlan(5, 9, 0, 15, 15)
        assert lay.plan(geo, 5, computed=4, fresh=True) is None  # only from the query start
    assert lay.plan(exact, 9, computed=0, fresh=False) == StepPlan(9, 13, 0, 15, 15)
    # shifted logits: the window starts one position before the block
    assert lay.plan(prefix, 9, computed=8, fresh=False) == StepPlan(9, 13, 8, 15, 15)
    assert lay.plan(dual, 9, computed=8, fresh=False) == StepPlan(9, 13, 8, 13, 15)
    # one segment per query; dual mode attends the whole canvas's KV
    assert lay.segments(dual, 8, 13) == [(8, 13, 15)] and lay.segments(prefix, 8, 15) == [(8, 15, 15)]
    assert lay.segments(exact, 0, 15) == [(0, 15, 15)]
    # the last block is short: 10 = 4 + 4 + 2
    assert lay.span(dual, 13) == (13, 15)
    # Dream reads position p from the row of p - 1; LLaDA from its own
    assert lay.sources(dual, 9, 9, 13) == [8, 9, 10, 11]
    assert lay.sources(Geometry(5, 10, 4), 9, 9, 13) == [9, 10, 11, 12]
    # after a block is committed the next step starts from 0; mid-block from the window
    assert lay.rollback(prefix, computed=15, committed_before=5, committed=9, fresh=True) == 0
    assert lay.rollback(prefix, computed=15, committed_before=5, committed=5, fresh=False) == 4
    assert lay.chunk(exact, start=0, num_new_tokens=5, committed=5) == 1
    assert lay.front(exact, start=0, num_new_tokens=5, committed=5) == 0
    assert lay.schedule_len(exact, 5, 9) is None


def test_fast_dllm_windows_and_shift_inside_the_block():
    lay = LAYOUTS.get("fast_dllm_v2")
    geo = Geometry(prompt_len=33, max_tokens=41, block=32, sub_block=8)
    assert lay.windows(geo, 32, 64) == [(32, 40), (40, 48), (48, 56), (56, 64)]
    # the block's first position keeps its own row; the others read the row before
    assert lay.sources(geo, 32, 32, 40) == [32, 32, 33, 34, 35, 36, 37, 38]
    assert lay.sources(geo, 32, 40, 48) == list(range(39, 47))
    assert lay.ar_token and lay.early_stop and lay.schedule_len(geo, 32, 64) is None


def _window(algorithm: str, tokens: list[int], committed: int, **knobs) -> RequestBlock:
    t = torch.tensor([tokens])
    block = RequestBlock(lo=0, hi=len(tokens), tokens=t, committed=committed,
                         decode=policies.validate(DecodeConfig(algorithm, **knobs)))
    start_window(block, 0, len(tokens), EOS, MASK, rng_offset=0, schedule_len=None)
    return block


def test_stack_of_mixed_algorithms_equals_each_row_alone():
    torch.manual_seed(0)
    V = 100
    blocks = [
        _window("credit", [MASK] * 4, 0, threshold=0.2),
        _window("threshold", [7, MASK, MASK, MASK], 1, threshold=0.05),
        _window("joint_threshold", [MASK] * 4, 0, threshold=0.1),
    ]
    logits = torch.randn(3, 4, V) * 3
    # two steps, so the credit row carries its [1, B, V] state from the first into the second
    alone = []
    for r, b in enumerate(blocks):
        state = b.state
        params = policies.ParamBatch.from_configs([b.decode], EOS)
        outs = []
        for _ in range(2):
            out = policies.step(logits[r : r + 1], state, params, MASK)
            state.tokens, state.step, state.rng_offset = out.tokens, state.step + 1, state.rng_offset + 1
            outs.append(out.tokens)
        alone.append(outs)
    blocks = [
        _window("credit", [MASK] * 4, 0, threshold=0.2),
        _window("threshold", [7, MASK, MASK, MASK], 1, threshold=0.05),
        _window("joint_threshold", [MASK] * 4, 0, threshold=0.1),
    ]
    states = [b.state for b in blocks]
    params = policies.ParamBatch.from_configs([b.decode for b in blocks], EOS)
    for k in range(2):
        state = stack(states)
        assert set(state.extra) >= {"jt_generated", "jt_finished"}
        out = policies.step(logits, state, params, MASK)
        state.tokens, state.step, state.rng_offset = out.tokens, state.step + 1, state.rng_offset + 1
        for r in range(3):
            assert torch.equal(out.tokens[r : r + 1], alone[r][k])
        states = [row(state, r) for r in range(3)]
    assert "credit" in states[0].extra and tuple(states[0].extra["credit"].shape) == (1, 4, V)
    # the row of another algorithm carries zeros in the credit entry (never read)
    assert float(states[1].extra["credit"].abs().sum()) == 0.0


def test_schedule_len_spreads_the_whole_block():
    # SDAR / LLaDA2 spread the block length over the steps also on the prompt's partial block
    t = torch.tensor([[5, 6, MASK, MASK]])
    block = RequestBlock(lo=4, hi=8, tokens=t, committed=6, decode=policies.validate(DecodeConfig("low_confidence")))
    start_window(block, 4, 8, EOS, MASK, rng_offset=3, schedule_len=4)
    assert block.state.num_steps.tolist() == [4] and block.state.initial_masks.tolist() == [4]
    assert block.state.editable.tolist() == [[False, False, True, True]]
    assert block.state.rng_offset.tolist() == [3]


def test_serve_spec_budget_and_server_default_mode(tmp_path):
    import pytest

    from dllm_backend.core.tiny import make_tiny
    from dllm_backend.vllm_adapter.request_options import settings
    from dllm_backend.vllm_adapter.serve_spec import ServeSpec

    spec = ServeSpec.from_model_dir(make_tiny("DreamModel", tmp_path / "dream", seed=0), {"dllm": {"cache_mode": "dual"}})
    assert spec.layout is LAYOUTS.get("full_attention") and spec.block == 0

    class Params:  # the SamplingParams fields the settings read
        temperature, top_p, top_k, seed, max_tokens = 0.0, 1.0, 0, None, 10
        extra_args = {"algorithm": "threshold", "threshold": 0.5}

    got = settings(Params, spec, prompt_len=5)
    # Dream's default block is the whole canvas; the server's default cache mode applies
    assert got.geometry == Geometry(prompt_len=5, max_tokens=10, block=10, cache_mode="dual", shift=True)
    assert got.decode.algorithm == "threshold" and got.decode.threshold == 0.5
    # full attention schedules up to the whole canvas at once
    spec.check_token_budget(256, 256)
    with pytest.raises(ValueError, match="max_num_batched_tokens 255"):
        spec.check_token_budget(255, 256)


def test_virtual_batch_splits_queries_into_per_block_sequences():
    import dataclasses

    import numpy as np

    from dllm_backend.vllm_adapter.virtual_batch import VirtualBatch, capacity

    lay = LAYOUTS.get("block_diffusion")
    geo = Geometry(prompt_len=30, max_tokens=17, block=4)
    # nothing to split: one segment per request attending its own query end
    assert VirtualBatch.from_segments([lay.segments(geo, 28, 32), [(0, 5, 5)]]) is None
    # row 0: a commit folded into a step; row 1: a full-attention query in dual mode; row 2: as is
    vb = VirtualBatch.from_segments([lay.segments(geo, 24, 32), [(8, 13, 15)], [(0, 3, 3)]])
    assert vb.req.tolist() == [0, 0, 1, 2]
    assert vb.query_start_loc.tolist() == [0, 4, 8, 13, 16]
    assert vb.seq_lens.tolist() == [28, 32, 15, 3]

    @dataclasses.dataclass
    class Metadata:  # the CommonAttentionMetadata fields the split reads (per request: 3 rows)
        query_start_loc: torch.Tensor
        query_start_loc_cpu: torch.Tensor
        seq_lens: torch.Tensor
        num_reqs: int
        max_query_len: int
        max_seq_len: int
        block_table_tensor: torch.Tensor
        seq_lens_cpu_upper_bound: torch.Tensor | None
        is_prefilling: torch.Tensor | None
        req_idx: np.ndarray | None = None
        dcp_local_seq_lens: torch.Tensor | None = None

    qsl = torch.tensor([0, 8, 13, 16], dtype=torch.int32)
    cm = Metadata(qsl, qsl, torch.tensor([32, 13, 3], dtype=torch.int32), 3, 8, 32,
                  torch.tensor([[7, 0], [5, 6], [9, 0]], dtype=torch.int32),
                  torch.tensor([32, 13, 3], dtype=torch.int32), torch.tensor([False, True, True]),
                  req_idx=np.array([4, 1, 2]))
    out = dataclasses.replace(cm, **{k: v for k, v in vb.metadata_changes(cm).items() if not k.startswith("_")})
    assert out.num_reqs == 4 and out.max_query_len == 5 and out.max_seq_len == 32
    assert out.query_start_loc.tolist() == out.query_start_loc_cpu.tolist() == [0, 4, 8, 13, 16]
    assert out.seq_lens.tolist() == out.seq_lens_cpu_upper_bound.tolist() == [28, 32, 15, 3]
    assert out.block_table_tensor.tolist() == [[7, 0], [7, 0], [5, 6], [9, 0]]
    assert out.is_prefilling.tolist() == [False, False, True, True] and out.req_idx.tolist() == [4, 4, 1, 2]
    # a field the split cannot carry is refused by name
    import pytest

    with pytest.raises(ValueError, match="dcp_local_seq_lens"):
        vb.metadata_changes(dataclasses.replace(cm, dcp_local_seq_lens=torch.zeros(3)))
    # per step: one sequence per request plus one per block boundary a query can cross
    assert capacity(max_num_seqs=16, max_num_batched_tokens=256, block=4) == 80
    assert capacity(max_num_seqs=16, max_num_batched_tokens=256, block=None) == 16  # full attention


def test_per_sequence_builder_buffers_grow_to_the_step_capacity():
    from types import SimpleNamespace

    from dllm_backend.vllm_adapter.virtual_batch import fit_sequence_buffers

    # FlexAttention's builder: three buffers of max_num_seqs (+1) rows, one allocated lazily
    flex = SimpleNamespace(
        persistent_offset_tensor=torch.zeros(8, dtype=torch.int32), persistent_seq_lens=torch.zeros(8, dtype=torch.int32),
        persistent_query_start_loc=torch.zeros(9, dtype=torch.int32), persistent_physical_to_logical=None,
        cache_config=SimpleNamespace(num_gpu_blocks=5),
    )
    fit_sequence_buffers(flex, 20)
    assert [flex.persistent_offset_tensor.shape[0], flex.persistent_seq_lens.shape[0],
            flex.persistent_query_start_loc.shape[0]] == [20, 20, 21]
    assert flex.persistent_seq_lens.dtype == torch.int32
    assert tuple(flex.persistent_physical_to_logical.shape) == (20, 5)
    # large enough already, or no such buffers: untouched
    seq_lens = flex.persistent_seq_lens
    fit_sequence_buffers(flex, 12)
    assert flex.persistent_seq_lens is seq_lens
    other = SimpleNamespace(num_heads=3)
    fit_sequence_buffers(other, 20)
    assert vars(other) == {"num_heads": 3}
