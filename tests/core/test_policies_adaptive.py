"""Adaptive rules: threshold, factor, eb_sampler, low_confidence_dynamic, hierarchical, credit."""
from __future__ import annotations

import math

import torch

from dllm_backend.core.policies import DecodeConfig, ParamBatch, new_block_state, step

V = 8
MASK = 7
LN2 = math.log(2)


def logits_for(spec: list) -> torch.Tensor:
    """[1, B, V] logits, one entry per position: an int n gives n equal logits on ids 0..n-1
    (conf exactly 1/n, x0 = 0), a float c gives token 1 probability c (rest spread evenly)."""
    out = torch.full((1, len(spec), V), -math.inf)
    for b, s in enumerate(spec):
        if isinstance(s, int):
            out[0, b, :s] = 0.0
        else:
            out[0, b, :MASK] = math.log((1 - s) / (V - 2))
            out[0, b, 1] = math.log(s)
    return out


def one_step(cfg: DecodeConfig, logits: torch.Tensor, tokens=None, editable=None):
    width = logits.shape[1]
    tokens = torch.full((1, width), MASK, dtype=torch.long) if tokens is None else tokens
    editable = torch.ones_like(tokens, dtype=torch.bool) if editable is None else editable
    params = ParamBatch.from_configs([cfg], eos_ids=[6])
    state = new_block_state(tokens, editable, params, MASK)
    return step(logits, state, params, MASK), state


def picked(out) -> list[int]:
    return out.committed[0].nonzero().flatten().tolist()


def test_threshold_takes_all_above_tau():
    out, _ = one_step(DecodeConfig("threshold"), logits_for([0.95, 2, 0.3, 0.91]))
    assert picked(out) == [0, 3]
    assert out.tokens[0].tolist() == [1, MASK, MASK, 1]


def test_threshold_is_strict_with_top1_fallback_and_ties():
    spec = [2, 2, 4, 5]  # conf exactly 0.5, 0.5, 0.25, 0.2
    assert picked(one_step(DecodeConfig("threshold", threshold=0.5), logits_for(spec))[0]) == [0]
    assert picked(one_step(DecodeConfig("threshold", threshold=0.25), logits_for(spec))[0]) == [0, 1]
    assert picked(one_step(DecodeConfig("threshold", threshold=0.2499), logits_for(spec))[0]) == [0, 1, 2]
    assert picked(one_step(DecodeConfig("threshold", threshold=0.99), logits_for([0.3, 0.6, 0.5]))[0]) == [1]


def test_threshold_ignores_non_editable_and_decoded_positions():
    tokens = torch.tensor([[MASK, 3, MASK, MASK]])
    editable = torch.tensor([[False, True, True, True]])  # position 0: masked but not ours
    out, _ = one_step(DecodeConfig("threshold"), logits_for([0.99, 0.99, 0.5, 0.4]), tokens, editable)
    assert picked(out) == [2]
    assert out.tokens[0].tolist() == [MASK, 3, 1, MASK]


def test_factor_rule():
    # sorted 0.9, 0.76, 0.7, 0.5 against 1 - 1/(i+1): -, 0.667, 0.75, 0.8 -> the first two
    assert picked(one_step(DecodeConfig("factor"), logits_for([0.7, 0.9, 0.76, 0.5]))[0]) == [1, 2]
    # a larger factor lowers the bars: 0, 0.25, 0.4 -> all four
    out, _ = one_step(DecodeConfig("factor", factor=3.0), logits_for([0.7, 0.9, 0.76, 0.5]))
    assert picked(out) == [0, 1, 2, 3]
    # only the last candidate fails: not taken (Fast-dLLM's loop would take it, see fast_dllm.py)
    assert picked(one_step(DecodeConfig("factor"), logits_for([0.9, 0.2]))[0]) == [0]


def test_factor_boundary_is_non_strict():
    spec = [1, 2]  # conf 1.0 and exactly 0.5
    assert picked(one_step(DecodeConfig("factor", factor=1.5), logits_for(spec))[0]) == [0, 1]  # bar 0.5
    assert picked(one_step(DecodeConfig("factor", factor=1.4), logits_for(spec))[0]) == [0]


def test_eb_sampler_entropy_budget_excludes_the_last_element():
    spec = [2, 1, 2, 2]  # entropies ln2, 0, ln2, ln2; ascending: 1, 0, 2, 3
    assert picked(one_step(DecodeConfig("eb_sampler"), logits_for(spec))[0]) == [0, 1]
    assert picked(one_step(DecodeConfig("eb_sampler", gamma=0.7), logits_for(spec))[0]) == [0, 1, 2]
    assert picked(one_step(DecodeConfig("eb_sampler", gamma=1.4), logits_for(spec))[0]) == [0, 1, 2, 3]
    # at least one even with a zero budget and no zero-entropy position
    assert picked(one_step(DecodeConfig("eb_sampler", gamma=0.0), logits_for([2, 4, 2]))[0]) == [0]


def test_low_confidence_dynamic():
    # k = 1 (steps == masks): two positions above 0.9 -> both
    cfg = DecodeConfig("low_confidence_dynamic", threshold=0.9, steps=4)
    assert picked(one_step(cfg, logits_for([0.95, 0.97, 0.5, 0.3]))[0]) == [0, 1]
    # k = 2: only one above tau -> the top two
    cfg = DecodeConfig("low_confidence_dynamic", threshold=0.9, steps=2)
    assert picked(one_step(cfg, logits_for([0.95, 0.5, 0.4, 0.3]))[0]) == [0, 1]
    # strict: conf == tau is not "above"; falls back to the top k = 1 (lower position on ties)
    cfg = DecodeConfig("low_confidence_dynamic", threshold=0.5, steps=4)
    assert picked(one_step(cfg, logits_for([2, 2, 4, 4]))[0]) == [0]


def test_low_confidence_dynamic_finishes_within_the_planned_steps():
    params = ParamBatch.from_configs([DecodeConfig("low_confidence_dynamic", steps=3)], eos_ids=[6])
    state = new_block_state(torch.full((1, 8), MASK), torch.ones(1, 8, dtype=torch.bool), params, MASK)
    logits = logits_for([0.5, 0.4, 0.3, 0.6, 0.7, 0.2, 0.35, 0.45])
    counts = []
    for _ in range(3):
        out = step(logits, state, params, MASK)
        counts.append(int(out.committed.sum()))
        state.tokens, state.step = out.tokens, state.step + 1
    assert counts == [3, 3, 2] and bool(out.done)


def test_hierarchical_runs_low_and_high_thresholds():
    tokens = torch.tensor([[MASK, MASK, MASK, 3, MASK, MASK, MASK]])
    spec = [0.7, 0.8, 0.3, 0.99, 0.65, 0.5, 0.95]
    out, _ = one_step(DecodeConfig("hierarchical"), logits_for(spec), tokens)
    assert picked(out) == [1, 6]  # run leaders 0.8 (> 0.62) and 0.95; 0.95 also > 0.92
    out, _ = one_step(DecodeConfig("hierarchical", low_threshold=0.85), logits_for(spec), tokens)
    assert picked(out) == [6]
    spec2 = [0.7, 0.8, 0.3, 0.99, 0.65, 0.5, 0.6]  # run 2 leader 0.65 > 0.62
    out, _ = one_step(DecodeConfig("hierarchical"), logits_for(spec2), tokens)
    assert picked(out) == [1, 4]


def test_hierarchical_ties_and_global_best():
    tokens = torch.tensor([[MASK, MASK, 3, MASK, MASK]])
    spec = [2, 2, 1, 4, 4]  # 0.5, 0.5 | 0.25, 0.25
    out, _ = one_step(DecodeConfig("hierarchical", low_threshold=0.3), logits_for(spec), tokens)
    assert picked(out) == [0]
    out, _ = one_step(DecodeConfig("hierarchical", low_threshold=0.2), logits_for(spec), tokens)
    assert picked(out) == [0, 3]
    out, _ = one_step(DecodeConfig("hierarchical"), logits_for([4, 4, 4]))
    assert picked(out) == [0]  # nothing passes: the global best alone


def _credit_reference(z: torch.Tensor, credit: torch.Tensor, open_: torch.Tensor):
    """dInfer's credit fusion written out for one step: returns (new credit, fused conf, x0)."""
    p = torch.softmax(z, dim=-1)
    top_p, top_i = p.max(dim=-1)
    credit = credit * 0.8
    for b in range(z.shape[1]):
        if open_[0, b]:
            credit[0, b, top_i[0, b]] += top_p[0, b] ** 0.2
    fused = z + 0.7 * torch.log(credit + 1)
    q = torch.softmax(fused, dim=-1)
    conf, x0 = q.max(dim=-1)
    return credit, conf, x0


def test_credit_state_and_threshold_rule():
    z = logits_for([0.6, 0.5, 0.55])
    params = ParamBatch.from_configs([DecodeConfig("credit")], eos_ids=[6])
    state = new_block_state(torch.full((1, 3), MASK), torch.ones(1, 3, dtype=torch.bool), params, MASK)
    assert "credit" not in state.extra  # allocated at the first step (no vocab size given)
    ref_credit = torch.zeros(1, 3, V)
    open_ = torch.ones(1, 3, dtype=torch.bool)
    for _ in range(3):
        out = step(z, state, params, MASK)
        ref_credit, conf, x0 = _credit_reference(z, ref_credit, open_)
        assert torch.allclose(state.extra["credit"], ref_credit, atol=1e-6)
        best = float(conf[open_].max())
        expected = open_ & (conf >= min(best - 1e-5, 0.9))
        assert torch.equal(out.committed, expected)
        assert torch.equal(out.tokens, torch.where(expected, x0, state.tokens))
        state.tokens, state.step, open_ = out.tokens, state.step + 1, open_ & ~expected
        if bool(out.done):
            break
    assert not bool((state.tokens == MASK).any())


def test_credit_with_preallocated_state_matches_lazy():
    z = logits_for([0.6, 0.5, 0.55, 0.3])
    params = ParamBatch.from_configs([DecodeConfig("credit", threshold=0.7)], eos_ids=[6])
    runs = []
    for vocab_size in (None, V):
        state = new_block_state(torch.full((1, 4), MASK), torch.ones(1, 4, dtype=torch.bool), params, MASK,
                                vocab_size=vocab_size)
        if vocab_size:
            assert state.extra["credit"].shape == (1, 4, V)
        seq = []
        for _ in range(6):
            out = step(z, state, params, MASK)
            seq.append(picked(out))
            state.tokens, state.step = out.tokens, state.step + 1
            if bool(out.done):
                break
        runs.append(seq)
    assert runs[0] == runs[1]
    assert sum(len(s) for s in runs[0]) == 4
