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
    # committed 7: the block [4, 8) holds the prompt tail 4..6
    assert lay.plan(geo, 7, fresh=True) == StepPlan(4, 8, 4, 8, 8)
    # after a denoising step KV stays for whole blocks committed before it
    assert lay.rollback(geo, computed=8, committed_before=7, committed=7, fresh=False) == 4
    # after the commit forward of [4, 8) (committed 8 before it) nothing is rolled back
    assert lay.rollback(geo, computed=8, committed_before=8, committed=8, fresh=True) == 8
    # prefill: whole blocks only; the partial tail of a new request goes as it is
    assert lay.chunk(geo, start=0, num_new_tokens=11, committed=11) == 4
    assert lay.chunk(geo, start=6, num_new_tokens=1, committed=11) == 0
    assert lay.chunk(geo, start=0, num_new_tokens=3, committed=3) == 3
    assert lay.room(geo, max_model_len=30) == 28 - 7
    assert lay.schedule_len(geo, 4, 8) == 4


def test_full_canvas_plans_per_cache_mode():
    lay = LAYOUTS.get("full_attention")
    exact = Geometry(prompt_len=5, max_tokens=10, block=4, cache_mode="exact", shift=True)
    prefix = Geometry(prompt_len=5, max_tokens=10, block=4, cache_mode="prefix", shift=True)
    dual = Geometry(prompt_len=5, max_tokens=10, block=4, cache_mode="dual", shift=True)
    # every mode's first step of a block is the whole prompt + canvas
    for geo in (exact, prefix, dual):
        assert lay.plan(geo, 5, fresh=True) == StepPlan(5, 9, 0, 15, 15)
    assert lay.plan(exact, 9, fresh=False) == StepPlan(9, 13, 0, 15, 15)
    # shifted logits: the window starts one position before the block
    assert lay.plan(prefix, 9, fresh=False) == StepPlan(9, 13, 8, 15, 15)
    assert lay.plan(dual, 9, fresh=False) == StepPlan(9, 13, 8, 13, 15)
    assert lay.attended(dual, 13) == 15 and lay.attended(prefix, 15) == 15
    # the last block is short: 10 = 4 + 4 + 2
    assert lay.span(dual, 13) == (13, 15)
    # Dream reads position p from the row of p - 1; LLaDA from its own
    assert lay.sources(dual, 9, 9, 13) == [8, 9, 10, 11]
    assert lay.sources(Geometry(5, 10, 4), 9, 9, 13) == [9, 10, 11, 12]
    # after a block is committed the next step starts from 0; mid-block from the window
    assert lay.rollback(prefix, computed=15, committed_before=5, committed=9, fresh=True) == 0
    assert lay.rollback(prefix, computed=15, committed_before=5, committed=5, fresh=False) == 4
    assert lay.chunk(exact, start=0, num_new_tokens=5, committed=5) == 1
    assert lay.schedule_len(exact, 5, 9) is None and not lay.commit_forward


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
