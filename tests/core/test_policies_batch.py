"""Mixed batches, per-row independence, invariants of every algorithm, and the step protocol."""
from __future__ import annotations

import pathlib
import re

import pytest
import torch

from dllm_backend.core import policies
from dllm_backend.core.policies import DecodeConfig, ParamBatch, new_block_state, step

V = 12
MASK = 11
EOS = 10
B = 8
MAX_STEPS = 40

CONFIGS = [
    DecodeConfig("low_confidence", steps=3),
    DecodeConfig("random", steps=4, seed=5),
    DecodeConfig("entropy", steps=5, temperature=0.5, top_p=0.9, seed=1),
    DecodeConfig("maskgit_plus", alg_temp=0.3, seed=2),
    DecodeConfig("origin", steps=4, temperature=1.0, seed=3),
    DecodeConfig("threshold", threshold=0.6, temperature=0.7, top_k=3, seed=4),
    DecodeConfig("factor", factor=2.0),
    DecodeConfig("eb_sampler", gamma=0.5),
    DecodeConfig("hierarchical", threshold=0.5, low_threshold=0.2),
    DecodeConfig("credit", threshold=0.5),
    DecodeConfig("low_confidence_dynamic", threshold=0.7, temperature=1.0, seed=8),
    DecodeConfig("joint_threshold", threshold=0.4, max_post_edit_steps=3),
    DecodeConfig("topk_margin", steps=2, top_k=4),
    DecodeConfig("low_confidence", temperature=0.9, suppress_eos=True, suppress_eos_confidence=True, seed=6),
]
R = len(CONFIGS)


def _problem():
    """Initial tokens, editable mask, rng offsets and per-step logits for R rows."""
    g = torch.Generator().manual_seed(1234)
    tokens = torch.full((R, B), MASK, dtype=torch.long)
    editable = torch.ones(R, B, dtype=torch.bool)
    tokens[1::3, :2] = torch.tensor([3, 4])  # prompt tokens inside the block
    editable[1::3, :2] = False
    editable[2::4, -2:] = False  # masked tail past a short last block: never touched
    offsets = torch.arange(R, dtype=torch.long) * 7
    # sharp-ish logits so adaptive rules commit several tokens in a step
    logits = torch.randn(MAX_STEPS, R, B, V, generator=g) * 3.0
    return tokens, editable, offsets, logits


def _run(configs, tokens, editable, offsets, logits):
    params = ParamBatch.from_configs(configs, eos_ids=[EOS])
    state = new_block_state(tokens.clone(), editable, params, MASK, rng_offset=offsets)
    trace = []
    for i in range(MAX_STEPS):
        before = state.tokens.clone()
        out = step(logits[i], state, params, MASK)
        trace.append((before, out))
        state.tokens = out.tokens
        state.step += 1
        state.rng_offset += 1
        if bool(out.done.all()):
            break
    return trace


@pytest.fixture(scope="module")
def batch_trace():
    tokens, editable, offsets, logits = _problem()
    return _run(CONFIGS, tokens, editable, offsets, logits)


def _first_done(trace, r):
    return next(i for i, (_, out) in enumerate(trace) if bool(out.done[r]))


def test_mixed_batch_equals_each_row_alone(batch_trace):
    tokens, editable, offsets, logits = _problem()
    batch = batch_trace
    assert bool(batch[-1][1].done.all())
    for r, cfg in enumerate(CONFIGS):
        alone = _run([cfg], tokens[r : r + 1], editable[r : r + 1], offsets[r : r + 1], logits[:, r : r + 1])
        end = _first_done(batch, r)
        assert end == len(alone) - 1, cfg.algorithm
        for i in range(end + 1):
            assert torch.equal(batch[i][1].tokens[r], alone[i][1].tokens[0]), (cfg.algorithm, i)
            assert torch.equal(batch[i][1].committed[r], alone[i][1].committed[0]), (cfg.algorithm, i)
        # after its block is done a row is left alone by the later steps of the batch
        for _, out in batch[end:]:
            assert torch.equal(out.tokens[r], alone[-1][1].tokens[0]) and bool(out.done[r])


def test_invariants_of_every_algorithm(batch_trace):
    tokens, editable, _, _ = _problem()
    trace = batch_trace
    editing = torch.tensor([c.algorithm == "joint_threshold" for c in CONFIGS])
    for before, out in trace:
        masked_before = (before == MASK) & editable
        # non-editable positions never change
        assert torch.equal(out.tokens[~editable], tokens[~editable])
        # nothing is ever re-masked and the mask token is never written
        assert not bool(((out.tokens == MASK) & (before != MASK)).any())
        assert not bool((out.committed & (out.tokens == MASK)).any())
        # committed == changed; only joint_threshold touches already-decoded positions
        assert torch.equal(out.committed, out.tokens != before)
        assert not bool((out.committed & ~masked_before & ~editing[:, None]).any())
        assert not bool((out.committed & ~editable).any())
        # done means no editable mask is left
        assert not bool((out.done[:, None] & (out.tokens == MASK) & editable).any())
    final = trace[-1][1].tokens
    assert not bool(((final == MASK) & editable).any())
    assert bool((final[~editable] == tokens[~editable]).all())
    # suppress_eos row never holds an EOS
    assert not bool((final[-1] == EOS).any())


def test_fixed_schedules_finish_within_their_steps(batch_trace):
    tokens, editable, _, _ = _problem()
    trace = batch_trace
    for r, cfg in enumerate(CONFIGS):
        if policies.POLICIES.get(cfg.algorithm).schedule in ("llada", "dream"):
            planned = cfg.steps or int(((tokens[r] == MASK) & editable[r]).sum())
            assert _first_done(trace, r) + 1 <= planned, cfg.algorithm


def test_sampling_rows_depend_on_seed_and_are_reproducible():
    tokens, editable, offsets, logits = _problem()
    def final(seed):
        cfg = DecodeConfig("threshold", threshold=0.6, temperature=1.0, seed=seed)
        return _run([cfg], tokens[:1], editable[:1], offsets[:1], logits[:, :1])[-1][1].tokens
    assert torch.equal(final(11), final(11))
    assert len({tuple(final(s)[0].tolist()) for s in range(5)}) > 1


def test_single_algorithm_batch_does_not_index(monkeypatch):
    from dllm_backend.core.policies import dispatch

    def boom(*args, **kwargs):
        raise AssertionError("row indexing used for a single-algorithm batch")

    monkeypatch.setattr(dispatch, "take_rows", boom)
    tokens, editable, offsets, logits = _problem()
    cfgs = [DecodeConfig("threshold", seed=i) for i in range(R)]
    trace = _run(cfgs, tokens, editable, offsets, logits)
    assert bool(trace[-1][1].done.all())


def test_new_block_state_defaults_and_checks():
    params = ParamBatch.from_configs([DecodeConfig("low_confidence"), DecodeConfig("low_confidence", steps=2)], [EOS])
    tokens = torch.tensor([[MASK, MASK, 1, MASK], [MASK, MASK, MASK, MASK]])
    editable = torch.tensor([[True, True, True, False], [True] * 4])
    state = new_block_state(tokens, editable, params, MASK)
    assert state.initial_masks.tolist() == [2, 4]
    assert state.num_steps.tolist() == [2, 2]  # one per step for row 0, steps=2 for row 1
    assert state.step.tolist() == [0, 0] and state.rng_offset.tolist() == [0, 0]
    offsets = torch.tensor([5, 6])
    state = new_block_state(tokens, editable, params, MASK, torch.tensor([3, 3]), offsets)
    state.rng_offset += 1
    assert offsets.tolist() == [5, 6]  # copied, not aliased
    with pytest.raises(ValueError, match="rows"):
        new_block_state(tokens[:1], editable[:1], params, MASK)
    with pytest.raises(ValueError, match="editable"):
        new_block_state(tokens, editable[:, :2], params, MASK)
    with pytest.raises(ValueError, match="num_steps"):
        new_block_state(tokens, editable, params, MASK, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match=r"logits must be \[R, B, V\]"):
        step(torch.zeros(2, 3, V), new_block_state(tokens, editable, params, MASK), params, MASK)


def test_step_path_has_no_host_syncs():
    # The step must be capturable in a CUDA graph: no device->host reads anywhere on its path.
    root = pathlib.Path(policies.__file__).parent
    step_modules = ["adaptive", "dinfer", "dispatch", "dream", "fast_dllm", "joint_threshold", "llada",
                    "rng", "sampling", "selection"]
    forbidden = re.compile(r"""\.item\(|\.tolist\(|nonzero\(|\.cpu\(|\.numpy\(|torch\.any\(|\bbool\(|\bint\(|\bfloat\((?![\"'])""")
    for name in step_modules:
        text = (root / f"{name}.py").read_text()
        code = "\n".join(line.split("#")[0] for line in text.splitlines())
        code = re.sub(r'"""[\s\S]*?"""', "", code)
        assert not forbidden.findall(code), (name, forbidden.findall(code))
