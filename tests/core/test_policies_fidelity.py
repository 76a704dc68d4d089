"""The originals' confidences: softmax over the whole vocabulary, the mask token included.

Each case has the mask token holding part of a position's probability without being its top
token, chosen so that renormalising the confidence without the mask (what the policies did
before) flips the decision. The expectations are the originals' rules applied by hand:
Fast-dLLM v2 / Fast-dLLM `threshold`, LLaDA2 / SDAR `low_confidence_dynamic`, Dream `entropy`.
"""
from __future__ import annotations

import math

import torch

from dllm_backend.core.families import FAMILIES
from dllm_backend.core.policies import DecodeConfig, ParamBatch, new_block_state, step

V = 8
MASK = 7


def logits_of(rows: list[list[float]]) -> torch.Tensor:
    """[1, B, V] log-probabilities; each row lists p(id 0..V-1), the mask id last."""
    probs = torch.tensor(rows, dtype=torch.float32)
    assert probs.shape[1] == V and torch.allclose(probs.sum(dim=1), torch.ones(len(rows)))
    return torch.log(probs)[None]


def committed(cfg: DecodeConfig, logits: torch.Tensor) -> list[int]:
    tokens = torch.full((1, logits.shape[1]), MASK, dtype=torch.long)
    params = ParamBatch.from_configs([cfg], eos_ids=[6])
    state = new_block_state(tokens, torch.ones_like(tokens, dtype=torch.bool), params, MASK)
    out = step(logits, state, params, MASK)
    return out.committed[0].nonzero().flatten().tolist()


# position 0: p(x0) = 0.5 with 0.25 on the mask token (0.667 once renormalised without it);
# position 1: p(x0) = 0.55, no mass on the mask
MASKED_MASS = [
    [0.5, 0.15, 0.05, 0.05, 0.0, 0.0, 0.0, 0.25],
    [0.55, 0.15, 0.15, 0.15, 0.0, 0.0, 0.0, 0.0],
]


def test_threshold_reads_the_full_softmax():
    # original: nothing above 0.6, so the single most confident position (1) is committed
    assert committed(DecodeConfig("threshold", threshold=0.6), logits_of(MASKED_MASS)) == [1]


def test_low_confidence_dynamic_reads_the_full_softmax():
    # original: no position above 0.6 (fewer than k = 1), so the top k = 1 by confidence: 1
    cfg = DecodeConfig("low_confidence_dynamic", threshold=0.6, steps=2)
    assert committed(cfg, logits_of(MASKED_MASS)) == [1]


def test_entropy_ranks_with_the_full_softmax():
    rows = [
        [0.7, 0.05, 0.05, 0.0, 0.0, 0.0, 0.0, 0.2],  # sum p log p = -0.871 (renormalised: -0.463)
        [0.8, 0.1, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0],  # -0.639
        [0.25, 0.25, 0.25, 0.25, 0.0, 0.0, 0.0, 0.0],  # -1.386
    ]
    neg = [sum(p * math.log(p + 1e-10) for p in r) for r in rows]
    assert neg[1] > neg[0] > neg[2]
    # Dream with 3 masks over 2 steps unmasks int(3 * (1 - s/t)) = 1 position first: the original's
    # most confident by negative entropy is position 1
    assert committed(DecodeConfig("entropy", steps=2), logits_of(rows)) == [1]


def test_fast_dllm_v2_ignores_top_p_at_temperature_zero():
    # Fast-dLLM v2's `sample_with_top_p` returns softmax(logits) at temperature 0; Dream's
    # `sample_tokens` (and SDAR's, LLaDA2's) apply top_p there too. Position 0: 0.5 / 0.3 /
    # 0.2; top_p 0.6 keeps 0.5 and 0.3: renormalised p(x0) = 0.625 > tau 0.6. Position 1: 0.55
    # then three 0.15; top_p 0.6 keeps 0.55 and the first 0.15: 0.55 / 0.7 = 0.786.
    rows = [[0.5, 0.3, 0.2, 0.0, 0.0, 0.0, 0.0, 0.0], [0.55, 0.15, 0.15, 0.15, 0.0, 0.0, 0.0, 0.0]]
    knobs = {"algorithm": "threshold", "threshold": 0.6, "top_p": 0.6}
    fast = DecodeConfig(**FAMILIES.get("Fast_dLLM_QwenForCausalLM").decode_knobs(knobs))
    dream = DecodeConfig(**FAMILIES.get("DreamModel").decode_knobs(knobs))
    assert (fast.top_p, dream.top_p) == (1.0, 0.6)
    assert committed(fast, logits_of(rows)) == [1]  # plain softmax: 0.5 and 0.55, none above 0.6
    assert committed(dream, logits_of(rows)) == [0, 1]  # nucleus-renormalised 0.625 and 0.786
    sampled = FAMILIES.get("Fast_dLLM_QwenForCausalLM").decode_knobs({**knobs, "temperature": 0.7})
    assert sampled["top_p"] == 0.6  # sampled rows keep their nucleus
