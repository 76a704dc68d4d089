"""Tests of the full-attention reference generator (LLaDA, LLaDA-MoE, Dream).

`exact` mode is checked token for token against independent transcriptions of the original
loops (LLaDA's `generate.py`, Dream's `diffusion_generate`) written here with plain argmax /
topk and the originals' transfer schedules, without our policies. Confidences are the
originals' (softmax over the whole vocabulary, the mask token included); one deliberate
deviation: x0 is the best token other than the mask token, as our policies choose it (a
trained model never proposes it; these random tiny checkpoints sometimes would, and the
originals would then write a mask back). `prefix` / `dual` are
approximations: they must equal `exact` where they are exact (a block's first step) and
forward fewer tokens. Position-only stand-in networks prove the logit shift direction and
the stop / EOS rules with outputs known in advance.
"""
from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn

from dllm_backend.core import policies
from dllm_backend.core.families import FAMILIES, ResolvedFamily
from dllm_backend.core.policies.base import DecodeConfig
from dllm_backend.core.reference.base import ReferenceModel
from dllm_backend.core.reference.generators import GenerationRequest, generate
from dllm_backend.core.reference.loading import LoadedModel, load_reference

LLADA_ARCHS = ("LLaDAModelLM", "LLaDAMoEModelLM")
PROMPTS = ((11, 12, 13), (20, 5, 31, 7, 9), (40,), (8, 9, 10, 11, 12, 13, 14))


# ---------------------------------------------------------------- checkpoints


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """arch -> LoadedModel of the real tiny checkpoint (built once per module)."""
    from dllm_backend.core.tiny import make_tiny

    cache: dict[str, LoadedModel] = {}

    def get(arch: str) -> LoadedModel:
        if arch not in cache:
            out = tmp_path_factory.mktemp(arch)
            make_tiny(arch, out, seed=0)
            cache[arch] = load_reference(out)
        return cache[arch]

    return get


def _forward(model: ReferenceModel):
    """Full-canvas forward without cache: x [R, T] -> raw logits [R, T, V]."""

    def run(x: torch.Tensor) -> torch.Tensor:
        pos = torch.arange(x.shape[1])[None].expand(x.shape[0], -1)
        return model(x, pos, None, None, "none")

    return run


def _request(
    prompt, max_tokens, algorithm, block=None, steps=None, cache="exact", **kw
) -> GenerationRequest:
    decode = DecodeConfig(algorithm=algorithm, steps=steps, **kw)
    return GenerationRequest(tuple(prompt), max_tokens, decode, block_size=block, cache_mode=cache)


def _cut(tokens: list[int], eos_ids) -> list[int]:
    for i, t in enumerate(tokens):
        if t in eos_ids:
            return tokens[: i + 1]
    return tokens


# ------------------------------------------------- transcriptions of the originals


def _block_starts(prompt_len: int, gen_len: int, block: int):
    for start in range(prompt_len, prompt_len + gen_len, block):
        yield start, min(start + block, prompt_len + gen_len)


@torch.no_grad()
def llada_loop(forward, prompt, gen_len, block, steps, mask_id, cfg_scale=0.0) -> list[int]:
    """LLaDA `generate` at temperature 0 with low_confidence remasking.

    `steps` is per block (None: one token per step); a short last block gets the same
    schedule rule on its own mask count.
    """
    plen = len(prompt)
    x = torch.full((1, plen + gen_len), mask_id, dtype=torch.long)
    x[0, :plen] = torch.tensor(prompt)
    prompt_index = x != mask_id
    for start, end in _block_starts(plen, gen_len, block):
        masks = int((x[:, start:end] == mask_id).sum())
        n = steps or masks
        schedule = [masks // n + (1 if i < masks % n else 0) for i in range(n)]
        for i in range(n):
            mask_index = x == mask_id
            if cfg_scale > 0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                cond, un = forward(torch.cat([x, un_x])).chunk(2)
                logits = un + (cfg_scale + 1) * (cond - un)
            else:
                logits = forward(x)
            p = torch.softmax(logits, -1)
            x0 = _argmax_not_mask(logits, mask_id)  # see the module docstring
            x0_p = torch.gather(p, -1, x0[..., None])[..., 0]
            x0_p[:, end:] = -math.inf
            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, -math.inf)
            picked = confidence[0].topk(schedule[i]).indices
            x[0, picked] = x0[0, picked]
    return x[0, plen:].tolist()


def _argmax_not_mask(x: torch.Tensor, mask_id: int) -> torch.Tensor:
    x = x.clone()
    x[..., mask_id] = -math.inf
    return x.argmax(-1)


@torch.no_grad()
def dream_loop(forward, prompt, gen_len, block, steps, alg, mask_id, eps=1e-3) -> list[int]:
    """Dream `diffusion_generate` (`_sample`) at temperature 0 for maskgit_plus / topk_margin /
    entropy; with block < gen_len the canvas is split like Fast-dLLM's block variant."""
    plen = len(prompt)
    x = torch.full((1, plen + gen_len), mask_id, dtype=torch.long)
    x[0, :plen] = torch.tensor(prompt)
    for start, end in _block_starts(plen, gen_len, block):
        n = steps or int((x[:, start:end] == mask_id).sum())
        timesteps = torch.linspace(1, eps, n + 1)
        for i in range(n):
            mask_index = x == mask_id
            mask_index[:, end:] = False
            logits = forward(x)
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
            probs = torch.softmax(logits[mask_index], -1)
            x0 = _argmax_not_mask(probs, mask_id)  # see the module docstring
            confidence = probs.gather(-1, x0[:, None])[:, 0]
            if alg == "topk_margin":
                top2 = probs.sort(-1, descending=True).values
                confidence = top2[:, 0] - top2[:, 1]
            elif alg == "entropy":
                confidence = (probs * torch.log(probs + 1e-10)).sum(-1)
            t, s = timesteps[i], timesteps[i + 1]
            num_mask = mask_index.sum() / mask_index.shape[0]
            k = int(num_mask * (1 - s / t)) if i < n - 1 else int(num_mask)
            full = torch.full(x.shape, -math.inf, dtype=logits.dtype)
            full[mask_index] = confidence
            if k > 0:
                picked = full[0].topk(k).indices
                proposal = torch.full_like(x, mask_id)
                proposal[mask_index] = x0
                x[0, picked] = proposal[0, picked]
    return x[0, plen:].tolist()


# ------------------------------------------------------ real tiny checkpoints


LLADA_CASES = (  # prompt, max_tokens, block, steps per block
    (PROMPTS[0], 8, 4, 2),
    (PROMPTS[1], 10, 4, 4),  # blocks 4, 4, 2
    (PROMPTS[2], 6, 6, None),
    (PROMPTS[3], 7, 3, 3),  # blocks 3, 3, 1
    (PROMPTS[1], 9, 4, 1),  # blocks 4, 4, 1
)


@pytest.mark.parametrize("arch", LLADA_ARCHS)
@pytest.mark.parametrize("prompt,max_tokens,block,steps", LLADA_CASES)
def test_llada_exact_equals_original_loop(tiny, arch, prompt, max_tokens, block, steps):
    loaded = tiny(arch)
    fam = loaded.family
    res = generate(loaded, _request(prompt, max_tokens, "low_confidence", block, steps))
    want = llada_loop(_forward(loaded.model), prompt, max_tokens, block, steps, fam.mask_id)
    assert res.token_ids == _cut(want, fam.eos_ids)
    assert res.finish_reason == ("stop" if res.token_ids[-1] in fam.eos_ids else "length")
    blocks_run = -(-len(res.token_ids) // block)
    sizes = [min(block, max_tokens - b * block) for b in range(blocks_run)]
    # a fixed schedule finishes a block once no mask is left (steps > masks: one per step)
    assert res.nfe == res.steps == sum(min(steps or size, size) for size in sizes)
    assert sum(res.tokens_per_step) == sum(sizes)


DREAM_CASES = (  # prompt, max_tokens, block (None: the family default, the whole canvas), steps
    (PROMPTS[0], 8, None, 4),
    (PROMPTS[1], 6, None, None),
    (PROMPTS[3], 10, 4, 2),  # blocks 4, 4, 2
    (PROMPTS[2], 7, None, 3),
)


@pytest.mark.parametrize("alg", ("maskgit_plus", "topk_margin", "entropy"))
@pytest.mark.parametrize("prompt,max_tokens,block,steps", DREAM_CASES)
def test_dream_exact_equals_original_loop(tiny, alg, prompt, max_tokens, block, steps):
    loaded = tiny("DreamModel")
    fam = loaded.family
    res = generate(loaded, _request(prompt, max_tokens, alg, block, steps))
    whole = block or max_tokens
    want = dream_loop(_forward(loaded.model), prompt, max_tokens, whole, steps, alg, fam.mask_id)
    assert res.token_ids == _cut(want, fam.eos_ids)
    assert res.finish_reason == ("stop" if res.token_ids[-1] in fam.eos_ids else "length")
    assert res.nfe == res.steps


@pytest.mark.parametrize("cache", ("exact", "dual"))
@pytest.mark.parametrize("arch,alg", (("LLaDAModelLM", "low_confidence"), ("DreamModel", "maskgit_plus")))
def test_stop_id_cuts_output_and_skips_later_blocks(tiny, arch, alg, cache):
    loaded = tiny(arch)
    req = _request(PROMPTS[0], 12, alg, 4, 2, cache)
    full = generate(loaded, req)
    assert full.finish_reason == "length" and full.nfe == 6
    # declare a token a stop id, at the first generated index where it appears: the latest
    # such index, so that as many blocks as possible run before the stop
    j = max(j for j in range(12) if full.token_ids[j] not in full.token_ids[:j])
    assert j >= 4, full.token_ids  # the stop lies past the first block
    stop = full.token_ids[j]
    stopping = replace(loaded, family=replace(loaded.family, eos_ids=(stop,)))
    res = generate(stopping, req)
    # blocks up to the stop were denoised with every later position masked, as before
    assert res.token_ids == full.token_ids[: j + 1]
    assert res.finish_reason == "stop"
    steps_run = 2 * (j // 4 + 1)  # two steps per block, blocks up to the stop's
    assert res.nfe == steps_run and res.tokens_per_step == full.tokens_per_step[:steps_run]


@pytest.mark.parametrize("cache", ("exact", "prefix", "dual"))
@pytest.mark.parametrize("arch,alg", (("LLaDAModelLM", "low_confidence"), ("DreamModel", "entropy")))
def test_greedy_is_deterministic(tiny, arch, alg, cache):
    loaded = tiny(arch)
    req = _request(PROMPTS[1], 10, alg, 4, 2, cache)
    a, b = generate(loaded, req), generate(loaded, req)
    assert (a.token_ids, a.finish_reason, a.nfe, a.tokens_per_step) == (
        b.token_ids, b.finish_reason, b.nfe, b.tokens_per_step
    )


def test_cfg_equals_original_and_doubles_nfe(tiny):
    loaded = tiny("LLaDAModelLM")
    fam = loaded.family
    res = generate(loaded, _request(PROMPTS[0], 8, "low_confidence", 4, 2, cfg_scale=1.5))
    want = llada_loop(_forward(loaded.model), PROMPTS[0], 8, 4, 2, fam.mask_id, cfg_scale=1.5)
    assert res.token_ids == _cut(want, fam.eos_ids)
    assert res.nfe == 2 * res.steps
    assert res.steps == 2 * -(-len(res.token_ids) // 4)


@pytest.mark.parametrize("cache", ("prefix", "dual"))
def test_cfg_needs_exact_mode(tiny, cache):
    with pytest.raises(ValueError, match="cfg_scale 1.5"):
        req = _request(PROMPTS[0], 8, "low_confidence", 4, 2, cache, cfg_scale=1.5)
        generate(tiny("LLaDAModelLM"), req)


def _first_step_tokens(monkeypatch, loaded, req) -> list[list[int]]:
    """Runs `req`, returning the block tokens after each block's first policy step."""
    seen: list[list[int]] = []
    real_step = policies.step

    def spy(logits, state, params, mask_id):
        out = real_step(logits, state, params, mask_id)
        if int(state.step[0]) == 0:
            seen.append(out.tokens[0].tolist())
        return out

    with monkeypatch.context() as patch:
        patch.setattr(policies, "step", spy)
        generate(loaded, req)
    return seen


@pytest.mark.parametrize("arch,alg", (
    ("LLaDAModelLM", "low_confidence"),
    ("LLaDAMoEModelLM", "low_confidence"),
    ("DreamModel", "maskgit_plus"),
))
@pytest.mark.parametrize("cache", ("prefix", "dual"))
def test_cache_modes_exact_where_they_should_be(tiny, monkeypatch, arch, alg, cache):
    loaded = tiny(arch)
    fam = loaded.family
    for prompt in PROMPTS:
        exact_req = _request(prompt, 11, alg, 4, 2)
        approx_req = replace(exact_req, cache_mode=cache)
        # the first block's first step is a full forward in every mode
        want = _first_step_tokens(monkeypatch, loaded, exact_req)[0]
        assert _first_step_tokens(monkeypatch, loaded, approx_req)[0] == want
        res = generate(loaded, approx_req)
        if res.finish_reason == "length":
            assert len(res.token_ids) == 11 and not set(res.token_ids) & set(fam.eos_ids)
        else:
            assert res.token_ids[-1] in fam.eos_ids and len(res.token_ids) <= 11
            assert not set(res.token_ids[:-1]) & set(fam.eos_ids)
        # one step per block: every step is a block-start full forward, so the modes agree
        one = _request(prompt, 11, alg, 4, 1)
        approx_one = generate(loaded, replace(one, cache_mode=cache))
        assert approx_one.token_ids == generate(loaded, one).token_ids


def _count_tokens(model: nn.Module):
    """Installs a hook that appends the number of positions (rows x length) of every forward;
    returns the list and the hook handle."""
    counts: list[int] = []
    handle = model.register_forward_pre_hook(lambda mod, args: counts.append(int(args[0].numel())))
    return counts, handle


def _expected_tokens(
    cache: str, shift: bool, prompt_len: int, max_tokens: int, block: int, steps: int, blocks_run: int
) -> int:
    """Positions forwarded when each of `blocks_run` blocks takes `steps` steps."""
    total = prompt_len + max_tokens
    n = 0
    for b in range(blocks_run):
        start = prompt_len + b * block
        end = min(start + block, total)
        window = start - 1 if shift else start
        later = {"exact": total, "prefix": total - window, "dual": end - window}[cache]
        n += total + (steps - 1) * later
    return n


@pytest.mark.parametrize(
    "arch,alg", (("LLaDAMoEModelLM", "low_confidence"), ("DreamModel", "topk_margin"))
)
def test_cache_modes_forward_fewer_tokens(tiny, arch, alg):
    loaded = tiny(arch)
    prompt, max_tokens, block, steps = PROMPTS[3], 12, 4, 3
    used = {}
    for cache in ("exact", "prefix", "dual"):
        counts, handle = _count_tokens(loaded.model)
        res = generate(loaded, _request(prompt, max_tokens, alg, block, steps, cache))
        handle.remove()
        blocks_run = -(-len(res.token_ids) // block)
        assert res.nfe == len(counts) == blocks_run * steps
        used[cache] = sum(counts)
        shift = loaded.family.spec.logit_shift
        want = _expected_tokens(cache, shift, len(prompt), max_tokens, block, steps, blocks_run)
        assert used[cache] == want
    assert used["dual"] < used["prefix"] < used["exact"]


def test_how_often_cache_modes_differ(tiny):
    """Not a pass/fail of the approximation: prints how far prefix / dual drift from exact."""
    runs = (("LLaDAModelLM", "low_confidence"), ("LLaDAMoEModelLM", "low_confidence"), ("DreamModel", "entropy"))
    for arch, alg in runs:
        loaded = tiny(arch)
        for cache in ("prefix", "dual"):
            same = total = 0
            for prompt in PROMPTS:
                req = _request(prompt, 12, alg, 4, 2)
                a = generate(loaded, req).token_ids
                b = generate(loaded, replace(req, cache_mode=cache)).token_ids
                total += max(len(a), len(b))
                same += sum(x == y for x, y in zip(a, b))
            # each block-0 first step is exact: its two committed tokens agree for every prompt
            assert 2 * len(PROMPTS) <= same <= total
            print(f"{arch} {cache}: {total - same}/{total} tokens differ from exact")


# ------------------------------------------------------ position-only stand-in


class PositionLM(ReferenceModel):
    """Stand-in network whose logits depend on the position only: position p prefers token
    (3 + p) % V (logit 8), then (4 + p) % V (logit 4). It records the positions each forward
    attends to (cache + new keys) so tests can check the cache bookkeeping."""

    def __init__(self, vocab: int) -> None:
        super().__init__(config=None)
        self.vocab = vocab
        self.anchor = nn.Parameter(torch.zeros(()))  # gives the generator a device
        self.attended: list[list[int]] = []

    @property
    def num_layers(self) -> int:
        return 1

    def forward(self, input_ids, positions, mask=None, cache=None, write="none"):
        r, length = input_ids.shape
        keys = positions[:, None, :, None].float()  # [R, 1, L, 1]: a key is its own position
        if cache is not None:
            keys, _ = cache.update(0, keys, keys.clone(), write)
        self.attended.append(keys[0, 0, :, 0].long().tolist())
        best = (3 + positions) % self.vocab  # [R, L]
        logits = torch.zeros(r, length, self.vocab)
        logits.scatter_(-1, best[..., None], 8.0)
        logits.scatter_(-1, ((best + 1) % self.vocab)[..., None], 4.0)
        return logits


def _standin(arch: str, eos_ids=(60,), vocab: int = 64) -> LoadedModel:
    spec = FAMILIES.get(arch)
    fam = ResolvedFamily(
        spec=spec, mask_id=vocab - 1, eos_ids=tuple(eos_ids), block_size=spec.default_block_size,
        vocab_size=vocab, max_len=512,
    )
    return LoadedModel(model=PositionLM(vocab), family=fam, model_dir=Path("standin"))


@pytest.mark.parametrize("cache", ("exact", "prefix", "dual"))
@pytest.mark.parametrize("block", (4, 5, 13))
@pytest.mark.parametrize("arch,shift", (("LLaDAModelLM", 0), ("DreamModel", 1)))
def test_logit_shift_direction(arch, shift, block, cache):
    loaded = _standin(arch)
    prompt = (7, 8, 9)
    alg = "maskgit_plus" if shift else "low_confidence"
    res = generate(loaded, _request(prompt, 13, alg, block, 2, cache))
    # canvas position p is predicted by the logits at p - shift, which prefer 3 + p - shift
    assert res.token_ids == [3 + 3 + j - shift for j in range(13)]
    assert res.finish_reason == "length"
    # every forward attended to the whole canvas, in position order (prefix truncation and
    # dual overwrite keep the cache aligned with the canvas)
    assert all(seen == list(range(16)) for seen in loaded.model.attended)


@pytest.mark.parametrize("cache", ("exact", "prefix", "dual"))
def test_stop_id_ends_generation_after_its_block(cache):
    loaded = _standin("LLaDAModelLM", eos_ids=(3 + 3 + 5,))  # generated index 5 is the stop id
    res = generate(loaded, _request((7, 8, 9), 16, "low_confidence", 4, None, cache))
    assert res.token_ids == [6, 7, 8, 9, 10, 11]
    assert res.finish_reason == "stop"
    assert res.nfe == res.steps == 8  # two blocks of four one-token steps; blocks 3 and 4 never run
    assert res.tokens_per_step == [1] * 8


def test_suppress_eos_never_emits_the_stop_id():
    loaded = _standin("LLaDAModelLM", eos_ids=(11,))
    res = generate(loaded, _request((7, 8, 9), 16, "low_confidence", 4, None, suppress_eos=True))
    # position 8 (generated index 5) would say 11; with EOS suppressed its runner-up 12 wins
    assert res.token_ids == [6, 7, 8, 9, 10, 12] + list(range(12, 22))
    assert res.finish_reason == "length"
    assert res.nfe == 16


def test_tokens_forwarded_by_cache_mode():
    """Exact counts for prompt 3 + 10 tokens, blocks 4, 4, 2, two steps per block."""
    got = {}
    for arch in ("LLaDAModelLM", "DreamModel"):
        for cache in ("exact", "prefix", "dual"):
            loaded = _standin(arch)
            counts, _ = _count_tokens(loaded.model)
            alg = "low_confidence" if arch == "LLaDAModelLM" else "maskgit_plus"
            res = generate(loaded, _request((7, 8, 9), 10, alg, 4, 2, cache))
            assert res.nfe == len(counts) == 6
            got[arch, cache] = sum(counts)
    assert got == {
        ("LLaDAModelLM", "exact"): 78, ("LLaDAModelLM", "prefix"): 57, ("LLaDAModelLM", "dual"): 49,
        ("DreamModel", "exact"): 78, ("DreamModel", "prefix"): 60, ("DreamModel", "dual"): 52,
    }


def test_registry_dispatches_full_attention_families():
    for arch in ("LLaDAModelLM", "LLaDAMoEModelLM", "DreamModel"):
        assert FAMILIES.get(arch).generator == "full_attention"
    from dllm_backend.core.reference.generators import get_generator
    from dllm_backend.core.reference.generators.full_attention import generate as full_generate

    assert get_generator("full_attention") is full_generate
