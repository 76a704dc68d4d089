"""LLaDA2.1 JointThreshold: unmasking plus editing of generated tokens, and its stopping rule."""
from __future__ import annotations

import math

import torch

from dllm_backend.core.policies import DecodeConfig, ParamBatch, new_block_state, step

V = 8
MASK = 7


def logits_for(spec: list) -> torch.Tensor:
    """[1, B, V]: (token, prob) puts `prob` on `token` (rest spread evenly); an int n gives n
    equal logits on ids 0..n-1 (conf exactly 1/n, x0 = 0)."""
    out = torch.full((1, len(spec), V), -math.inf)
    for b, s in enumerate(spec):
        if isinstance(s, int):
            out[0, b, :s] = 0.0
        else:
            tok, p = s
            out[0, b, :MASK] = math.log((1 - p) / (V - 2))
            out[0, b, tok] = math.log(p)
    return out


def start(cfg, tokens, editable=None):
    params = ParamBatch.from_configs([cfg], eos_ids=[6])
    editable = torch.ones_like(tokens, dtype=torch.bool) if editable is None else editable
    return params, new_block_state(tokens, editable, params, MASK)


def advance(state, out):
    state.tokens = out.tokens
    state.step += 1
    state.rng_offset += 1


def picked(out) -> list[int]:
    return out.committed[0].nonzero().flatten().tolist()


def test_unmask_edit_and_finish():
    params, state = start(DecodeConfig("joint_threshold"), torch.full((1, 4), MASK))
    script = [
        # step 1: 0.9 and 0.6 > 0.5 are unmasked
        (logits_for([(1, 0.9), (1, 0.6), (1, 0.4), (1, 0.3)]), [0, 1], [1, 1, MASK, MASK], False),
        # step 2: position 0 now prefers token 2 (edit, p > 0); no mask passes 0.5 -> the best one
        (logits_for([(2, 0.8), (1, 0.6), (3, 0.4), (1, 0.3)]), [0, 2], [2, 1, 3, MASK], False),
        # step 3: the last mask; not done yet, an edit could still follow
        (logits_for([(2, 0.8), (1, 0.6), (3, 0.4), (4, 0.3)]), [3], [2, 1, 3, 4], False),
        # step 4: no mask, nothing to rewrite -> done, nothing changes
        (logits_for([(2, 0.8), (1, 0.6), (3, 0.4), (4, 0.3)]), [], [2, 1, 3, 4], True),
    ]
    for logits, expect_picked, expect_tokens, expect_done in script:
        out = step(logits, state, params, MASK)
        assert picked(out) == expect_picked
        assert out.tokens[0].tolist() == expect_tokens
        assert bool(out.done) == expect_done
        advance(state, out)
    assert int(state.extra["jt_post_edit_steps"]) == 1
    # a finished row stays finished even if the logits would now rewrite something
    out = step(logits_for([(5, 0.99)] * 4), state, params, MASK)
    assert picked(out) == [] and bool(out.done) and out.tokens[0].tolist() == [2, 1, 3, 4]


def test_post_edit_steps_are_bounded():
    params, state = start(DecodeConfig("joint_threshold", max_post_edit_steps=2), torch.full((1, 2), MASK))
    history = []
    for i in range(10):
        tok = 1 + i % 2  # the model keeps changing its mind at every position
        out = step(logits_for([(tok, 0.9), (tok, 0.9)]), state, params, MASK)
        history.append((picked(out), bool(out.done)))
        advance(state, out)
        if bool(out.done):
            break
    # fill, then 2 post-edit steps that rewrite, then the 3rd post-edit step ends the block
    assert history == [([0, 1], False), ([0, 1], False), ([0, 1], False), ([], True)]


def test_zero_post_edit_steps_stop_right_after_the_fill():
    params, state = start(DecodeConfig("joint_threshold", max_post_edit_steps=0), torch.full((1, 2), MASK))
    out = step(logits_for([(1, 0.9), (1, 0.9)]), state, params, MASK)
    advance(state, out)
    out = step(logits_for([(2, 0.9), (2, 0.9)]), state, params, MASK)
    assert picked(out) == [] and bool(out.done)


def test_edit_threshold_is_strict():
    for edit_threshold, expect in [(0.5, []), (0.49, [0])]:
        params, state = start(DecodeConfig("joint_threshold", edit_threshold=edit_threshold),
                              torch.tensor([[MASK]]))
        out = step(logits_for([(3, 0.9)]), state, params, MASK)
        advance(state, out)
        out = step(logits_for([2]), state, params, MASK)  # proposes token 0 with p exactly 0.5
        assert picked(out) == expect
        assert bool(out.done) == (expect == [])


def test_prompt_and_prefilled_positions_are_never_edited():
    tokens = torch.tensor([[5, 4, MASK, MASK]])
    editable = torch.tensor([[False, True, True, True]])  # 0: prompt; 1: editable but pre-filled
    params, state = start(DecodeConfig("joint_threshold"), tokens, editable)
    out = step(logits_for([(1, 0.99), (1, 0.99), (2, 0.9), (2, 0.9)]), state, params, MASK)
    assert out.tokens[0].tolist() == [5, 4, 2, 2]
    advance(state, out)
    out = step(logits_for([(1, 0.99), (1, 0.99), (3, 0.9), (2, 0.9)]), state, params, MASK)
    assert out.tokens[0].tolist() == [5, 4, 3, 2]  # only the generated position 2 is rewritten
