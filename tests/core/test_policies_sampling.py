"""Token proposal: greedy/sampled x0, the confidence of each style, filters and EOS handling."""
from __future__ import annotations

import math

import pytest
import torch

from dllm_backend.core.policies import DecodeConfig, ParamBatch
from dllm_backend.core.policies.sampling import prepare_logits, propose

MASK = 5
EOS = 4


def _params(*cfgs: DecodeConfig) -> ParamBatch:
    return ParamBatch.from_configs(list(cfgs), eos_ids=[EOS])


def _propose(logits, params, style, confidence="prob", offset=None):
    offset = torch.zeros(logits.shape[0], dtype=torch.long) if offset is None else offset
    return propose(prepare_logits(logits, params), params, offset, MASK, style, confidence)


@pytest.mark.parametrize("style", ["llada", "dream"])
def test_greedy_is_argmax_with_softmax_confidence(style):
    logits = torch.tensor([[[1.0, 3.0, 2.0, 0.0, 0.0, -math.inf], [2.0, 2.0, 0.0, 0.0, 0.0, -math.inf]]])
    x0, conf = _propose(logits, _params(DecodeConfig("maskgit_plus")), style)
    assert x0.tolist() == [[1, 0]]  # tie between ids 0 and 1 -> the lower id
    p = torch.softmax(logits, dim=-1)
    assert torch.allclose(conf, torch.stack([p[0, 0, 1], p[0, 1, 0]])[None], atol=1e-7)
    # the caller's logits are not modified
    assert logits[0, 0, 1] == 3.0


def test_mask_token_is_never_proposed():
    logits = torch.tensor([[[0.0, 1.0, 0.0, 0.0, 0.0, 5.0]]])  # mask id 5 by far the largest
    for style in ("llada", "dream"):
        x0, conf = _propose(logits, _params(DecodeConfig("maskgit_plus")), style)
        assert x0.tolist() == [[1]]
        expected = math.e / (math.e + 4 + math.e**5)  # the originals' softmax: mask included
        assert abs(float(conf) - expected) < 1e-7


@pytest.mark.parametrize("style", ["llada", "dream"])
def test_sampling_never_draws_the_mask_token(style):
    logits = torch.tensor([0.0, 0.0, -1.0, -1.0, -1.0, 3.0]).expand(1, 2000, 6).clone()
    x0, _ = _propose(logits, _params(DecodeConfig("maskgit_plus", temperature=1.0, seed=2)), style)
    counts = torch.bincount(x0.flatten(), minlength=6).tolist()
    assert counts[MASK] == 0 and counts[0] > 0 and counts[1] > 0 and counts[2] > 0


def test_confidence_is_not_renormalised_without_the_mask():
    # the originals' confidence p[x0] over the whole vocabulary; renormalising without the
    # mask's 0.25 would give 0.5 / 0.75 = 0.667 and cross a 0.6 threshold
    probs = torch.tensor([0.5, 0.15, 0.05, 0.05, 0.0, 0.25])
    logits = torch.log(probs).expand(1, 1, 6).clone()
    for style in ("llada", "dream"):
        x0, conf = _propose(logits, _params(DecodeConfig("threshold")), style)
        assert x0.tolist() == [[0]]
        assert abs(float(conf) - 0.5) < 1e-6
    _, neg_ent = _propose(logits, _params(DecodeConfig("entropy")), "dream", "neg_entropy")
    expected = sum(float(p) * math.log(float(p) + 1e-10) for p in probs)
    assert abs(float(neg_ent) - expected) < 1e-5


def test_suppress_eos_per_row():
    logits = torch.tensor([[[0.0, 1.0, 0.0, 0.0, 9.0, -math.inf]]]).repeat(2, 1, 1)
    params = _params(DecodeConfig("maskgit_plus", suppress_eos=True), DecodeConfig("maskgit_plus"))
    x0, conf = _propose(logits, params, "llada")
    assert x0.tolist() == [[1], [EOS]]
    assert abs(float(conf[0, 0]) - math.e / (math.e + 3)) < 1e-6  # EOS mass removed before conf


def test_suppress_eos_confidence_per_row():
    logits = torch.tensor([[[0.0, 1.0, 0.0, 0.0, 9.0, -math.inf], [0.0, 9.0, 0.0, 0.0, 1.0, -math.inf]]])
    logits = logits.repeat(2, 1, 1)
    params = _params(DecodeConfig("maskgit_plus", suppress_eos_confidence=True), DecodeConfig("maskgit_plus"))
    for style in ("llada", "dream"):
        x0, conf = _propose(logits, params, style)
        assert x0.tolist() == [[EOS, 1], [EOS, 1]]
        assert conf[0, 0] == -math.inf and conf[0, 1] > 0.99
        assert conf[1, 0] > 0.99


def test_margin_and_negative_entropy():
    logits = torch.log(torch.tensor([[[0.5, 0.3, 0.2, 1e-30, 1e-30, 0.0]]]))
    logits[..., MASK] = -math.inf
    params = _params(DecodeConfig("topk_margin"))
    _, margin = _propose(logits, params, "dream", "margin")
    assert abs(float(margin) - 0.2) < 1e-6
    _, neg_ent = _propose(logits, params, "dream", "neg_entropy")
    expected = sum(p * math.log(p) for p in (0.5, 0.3, 0.2))
    assert abs(float(neg_ent) - expected) < 1e-5


def test_top_p_keeps_the_token_that_crosses_the_mass():
    # probs 0.5, 0.3, 0.2: mass before each = 0, 0.5, 0.8 -> top_p 0.6 keeps ids 0 and 1
    logits = torch.log(torch.tensor([0.5, 0.3, 0.2, 1e-30, 1e-30, 0.0])).expand(1, 4000, 6).clone()
    params = _params(DecodeConfig("maskgit_plus", temperature=1.0, top_p=0.6, seed=1))
    x0, conf = _propose(logits, params, "dream")
    counts = torch.bincount(x0.flatten(), minlength=6).tolist()
    assert counts[2] == 0 and counts[3] == 0 and counts[MASK] == 0
    assert abs(counts[0] / 4000 - 0.625) < 0.03  # 0.5 / 0.8 after renormalising
    # dream confidence is read from the filtered, renormalised probs
    assert torch.allclose(conf[x0 == 0], torch.tensor(0.625), atol=1e-6)
    assert torch.allclose(conf[x0 == 1], torch.tensor(0.375), atol=1e-6)


def test_top_k_keeps_ties_at_the_kth_value():
    logits = torch.tensor([2.0, 1.0, 1.0, 0.0, 0.0, -math.inf]).expand(1, 3000, 6).clone()
    params = _params(DecodeConfig("maskgit_plus", temperature=1.0, top_k=2, seed=4))
    x0, _ = _propose(logits, params, "dream")
    counts = torch.bincount(x0.flatten(), minlength=6).tolist()
    assert counts[3] == 0 and counts[4] == 0
    assert counts[1] > 0 and counts[2] > 0  # both tied at the 2nd value survive
    p0 = math.e**2 / (math.e**2 + 2 * math.e)
    assert abs(counts[0] / 3000 - p0) < 0.03


@pytest.mark.parametrize("style", ["llada", "dream"])
def test_sampling_follows_softmax_at_temperature(style):
    logits = torch.tensor([1.0, 0.0, -1.0, -math.inf, -math.inf, -math.inf]).expand(1, 6000, 6).clone()
    params = _params(DecodeConfig("maskgit_plus", temperature=2.0, seed=9))
    x0, conf = _propose(logits, params, style)
    freq = torch.bincount(x0.flatten(), minlength=6).double() / 6000
    target = torch.softmax(logits[0, 0] / 2.0, dim=-1).double()
    assert float((freq - target).abs().max()) < 0.02
    clean = torch.softmax(logits[0, 0], dim=-1)
    scaled = torch.softmax(logits[0, 0] / 2.0, dim=-1)
    # LLaDA reads conf from the clean logits, Dream from the temperature-scaled ones
    ref = clean if style == "llada" else scaled
    assert torch.allclose(conf[0], ref[x0[0]], atol=1e-6)


def test_sampling_is_deterministic_per_seed_and_offset():
    logits = torch.zeros(1, 64, 6)
    logits[..., MASK] = -math.inf
    def draw(seed, offset):
        params = _params(DecodeConfig("maskgit_plus", temperature=1.0, seed=seed))
        return _propose(logits, params, "dream", offset=torch.tensor([offset]))[0]
    assert torch.equal(draw(3, 0), draw(3, 0))
    assert not torch.equal(draw(3, 0), draw(4, 0))
    assert not torch.equal(draw(3, 0), draw(3, 1))


def test_greedy_rows_ignore_noise_in_a_sampling_batch():
    logits = torch.tensor([0.0, 0.1, 0.0, 0.0, 0.0, -math.inf]).expand(2, 500, 6).clone()
    params = _params(DecodeConfig("maskgit_plus", temperature=1.0), DecodeConfig("maskgit_plus"))
    for style in ("llada", "dream"):
        x0, _ = _propose(logits, params, style)
        assert bool((x0[1] == 1).all())  # greedy row
        assert int((x0[0] != 1).sum()) > 100  # sampling row
