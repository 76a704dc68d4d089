"""Fixed-count schedules: LLaDA (low_confidence, random) and Dream (maskgit_plus, topk_margin,
entropy, origin, alg_temp)."""
from __future__ import annotations

import math

import torch

from dllm_backend.core.policies import DecodeConfig, ParamBatch, new_block_state, step

V = 8
MASK = 7


def peaked(conf: list[list[float]], top: list[list[int]] | None = None) -> torch.Tensor:
    """[R, B, V] logits whose softmax gives token top[r][b] probability conf[r][b]; the rest is
    spread evenly over the other non-mask ids; the mask id gets -inf."""
    rows, width = len(conf), len(conf[0])
    out = torch.empty(rows, width, V)
    for r in range(rows):
        for b in range(width):
            t = (b % (V - 1)) if top is None else top[r][b]
            c = conf[r][b]
            out[r, b] = math.log((1 - c) / (V - 2)) if c < 1 else -1e4
            out[r, b, t] = math.log(c)
            out[r, b, MASK] = -math.inf
    return out


def run(configs, logits_fn, tokens, editable=None, max_steps=64):
    """The caller's loop: returns the per-step outputs and the final state."""
    params = ParamBatch.from_configs(configs, eos_ids=[6])
    editable = torch.ones_like(tokens, dtype=torch.bool) if editable is None else editable
    state = new_block_state(tokens, editable, params, MASK)
    outs = []
    for _ in range(max_steps):
        out = step(logits_fn(state), state, params, MASK)
        outs.append(out)
        state.tokens = out.tokens
        state.step += 1
        state.rng_offset += 1
        if bool(out.done.all()):
            break
    return outs, state


def masks(width: int, rows: int = 1) -> torch.Tensor:
    return torch.full((rows, width), MASK, dtype=torch.long)


CONF8 = [[0.9, 0.2, 0.8, 0.3, 0.7, 0.4, 0.6, 0.5]]  # all above 1/7: the top token is the argmax


def test_llada_low_confidence_counts_and_positions():
    logits = peaked(CONF8)
    outs, state = run([DecodeConfig("low_confidence", steps=3)], lambda s: logits, masks(8))
    assert [int(o.committed.sum()) for o in outs] == [3, 3, 2]
    picked = [o.committed[0].nonzero().flatten().tolist() for o in outs]
    assert picked == [[0, 2, 4], [5, 6, 7], [1, 3]]
    assert state.tokens[0].tolist() == [b % 7 for b in range(8)]
    assert [bool(o.done) for o in outs] == [False, False, True]


def test_llada_default_steps_is_one_token_per_step_and_more_steps_than_masks():
    logits = peaked(CONF8)
    outs, _ = run([DecodeConfig("low_confidence")], lambda s: logits, masks(8))
    assert [int(o.committed.sum()) for o in outs] == [1] * 8
    # 3 masks, 5 steps: 1, 1, 1 then done (LLaDA's trailing zero-token steps are not needed)
    tokens = masks(8)
    tokens[0, 3:] = 1
    outs, _ = run([DecodeConfig("low_confidence", steps=5)], lambda s: logits, tokens)
    assert [int(o.committed.sum()) for o in outs] == [1, 1, 1]


def test_ties_go_to_the_lower_position():
    logits = peaked([[0.5] * 6], top=[[2] * 6])  # bit-identical rows: exact ties
    outs, _ = run([DecodeConfig("low_confidence", steps=3)], lambda s: logits, masks(6))
    picked = [o.committed[0].nonzero().flatten().tolist() for o in outs]
    assert picked == [[0, 1], [2, 3], [4, 5]]


def test_llada_random_counts_determinism_and_seed_dependence():
    logits = peaked(CONF8)
    def picks(seed):
        outs, _ = run([DecodeConfig("random", steps=3, seed=seed)], lambda s: logits, masks(8))
        assert [int(o.committed.sum()) for o in outs] == [3, 3, 2]
        return [tuple(o.committed[0].nonzero().flatten().tolist()) for o in outs]
    assert picks(0) == picks(0)
    assert len({tuple(picks(seed)) for seed in range(6)}) > 1


def _dream_reference_counts(m: int, steps: int) -> list[int]:
    """Dream's diffusion_generate arithmetic in float32, with every masked position committed."""
    ts = torch.linspace(1, 1e-3, steps + 1)
    counts, left = [], m
    for i in range(steps):
        k = int(left * (1 - ts[i + 1] / ts[i])) if i < steps - 1 else left
        counts.append(k)
        left -= k
    return counts


def test_dream_counts_match_the_reference_arithmetic():
    assert _dream_reference_counts(8, 4) == [1, 2, 2, 3]
    for m, steps in [(8, 4), (8, 8), (16, 5), (32, 32), (7, 3), (12, 1)]:
        logits = peaked([[0.9 - 0.01 * b for b in range(m)]])
        outs, state = run([DecodeConfig("maskgit_plus", steps=steps)], lambda s: logits, masks(m))
        got = [int(o.committed.sum()) for o in outs]
        expected = _dream_reference_counts(m, steps)
        # the block ends as soon as no mask is left, so trailing zero-count steps are not run
        while expected and expected[-1] == 0:
            expected.pop()
        assert got == expected, (m, steps)
        assert not bool((state.tokens == MASK).any())


def test_dream_confidences_pick_different_positions():
    # pos 0: max-prob 0.5 but margin 0.05; pos 1: margin 0.3; pos 3: near uniform (high entropy)
    probs = torch.tensor([
        [0.50, 0.45, 0.01, 0.01, 0.01, 0.01, 0.01],
        [0.40, 0.10, 0.10, 0.10, 0.10, 0.10, 0.10],
        [0.46, 0.46, 0.02, 0.02, 0.02, 0.01, 0.01],
        [0.15, 0.15, 0.14, 0.14, 0.14, 0.14, 0.14],
    ])
    entropies = [float(-(p * p.log()).sum()) for p in probs]
    assert min(range(4), key=lambda b: entropies[b]) == 0
    logits = torch.cat([probs.log(), torch.full((4, 1), -math.inf)], dim=1)[None]

    def picks(alg):
        outs, _ = run([DecodeConfig(alg, steps=4)], lambda s: logits, masks(4))
        return [o.committed[0].nonzero().flatten().tolist() for o in outs]

    # with M = S = 4 Dream's first step commits int(4 * 0.24975) = 0, the second one token
    assert picks("maskgit_plus")[:2] == [[], [0]]
    assert picks("topk_margin")[:2] == [[], [1]]
    assert picks("entropy")[:2] == [[], [0]]


def test_alg_temp_samples_positions():
    logits = peaked([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2]])
    def picks(alg_temp, seed):
        outs, _ = run([DecodeConfig("maskgit_plus", steps=2, alg_temp=alg_temp, seed=seed)],
                      lambda s: logits, masks(8))
        return outs[0].committed[0].nonzero().flatten().tolist()
    # k = int(8 * 0.4995) = 3; a tiny alg_temp is top-k
    assert picks(1e-6, 0) == [0, 1, 2]
    assert picks(1e-6, 5) == [0, 1, 2]
    hot = [tuple(picks(100.0, seed)) for seed in range(8)]
    assert all(len(h) == 3 for h in hot)
    assert len(set(hot)) > 1
    assert picks(100.0, 3) == picks(100.0, 3)


def test_origin_reveals_each_position_with_probability_one_minus_s_over_t():
    width = 2000
    logits = peaked([[0.9] * width])
    firsts, seconds = [], []
    for seed in range(8):
        outs, state = run([DecodeConfig("origin", steps=4, seed=seed)], lambda s: logits, masks(width))
        counts = [int(o.committed.sum()) for o in outs]
        assert len(counts) == 4 and sum(counts) == width  # the last step reveals the rest
        assert not bool((state.tokens == MASK).any())
        firsts.append(counts[0] / width)
        seconds.append(counts[1] / (width - counts[0]))
    # 16000 Bernoulli draws per mean: sd ~0.0035; tolerance ~4 sd
    assert abs(sum(firsts) / 8 - 0.24975) < 0.015  # 1 - t1 / t0
    assert abs(sum(seconds) / 8 - (1 - 0.5005 / 0.75025)) < 0.017
    again, _ = run([DecodeConfig("origin", steps=4, seed=2)], lambda s: logits, masks(width))
    assert int(again[0].committed.sum()) / width == firsts[2]
