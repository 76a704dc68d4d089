"""Tests of the block-causal reference generators (`block_diffusion`, `fast_dllm_v2`).

- KV-cached generation equals a full block-causal recompute token for token, over prompts
  that do and do not end on a block boundary, several algorithms and max_tokens values.
- Independent transcriptions of the original loops (SDAR's `block_diffusion_generate`,
  Fast-dLLM v2's `generate`), written here with plain argmax / softmax / topk and their
  own KV handling, give the same tokens and forward counts for greedy decoding.
- A recording wrapper checks the forwards themselves (positions, masks, cache writes,
  prompt positions unchanged); a position-scripted network gives outputs, step and
  forward counts known in advance, including the stop rules.
A seeded toy network (`_ToyNet`) runs everything in milliseconds; the real tiny
checkpoints of each family repeat the main checks.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from dllm_backend.core.families import resolve
from dllm_backend.core.policies.base import DecodeConfig
from dllm_backend.core.reference.base import ReferenceModel
from dllm_backend.core.reference.generators import (
    GenerationRequest,
    get_generator,
    validate_request,
)
from dllm_backend.core.reference.generators import block_diffusion, fast_dllm_v2
from dllm_backend.core.reference.generators._block_common import block_causal_mask
from dllm_backend.core.reference.layers import GatedMLP, RMSNorm, Rotary, cached_attention
from dllm_backend.core.reference.loading import LoadedModel

V, MASK, EOS = 64, 63, 62  # the toy vocabulary: ids 62/63 are the stop and mask tokens
NEG = float("-inf")


# ------------------------------------------------------------------ stand-in networks


class _ToyNet(ReferenceModel):
    """A seeded two-layer transformer obeying the forward contract (mask, KV cache, RoPE)."""

    def __init__(self, seed: int = 0, hidden: int = 32, heads: int = 4, layers: int = 2) -> None:
        super().__init__(None)
        gen = torch.Generator().manual_seed(seed)
        self.heads, self.head_dim = heads, hidden // heads
        self.embed = nn.Embedding(V, hidden)
        self.blocks = nn.ModuleList()
        for _ in range(layers):
            layer = nn.Module()
            layer.norm1, layer.norm2 = RMSNorm(hidden, 1e-6), RMSNorm(hidden, 1e-6)
            layer.qkv, layer.out = nn.Linear(hidden, 3 * hidden), nn.Linear(hidden, hidden)
            layer.mlp = GatedMLP(hidden, 2 * hidden)
            self.blocks.append(layer)
        self.norm = RMSNorm(hidden, 1e-6)
        self.head = nn.Linear(hidden, V, bias=False)
        self.rotary = Rotary(self.head_dim, 10000.0)
        with torch.no_grad():
            for p in self.parameters():
                if p.dim() == 2:
                    p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
            self.head.weight.mul_(6.0)  # peaky enough that thresholds matter
        self.eval()

    @property
    def num_layers(self) -> int:
        return len(self.blocks)

    def forward(self, input_ids, positions, mask=None, cache=None, write="none"):
        r, length = input_ids.shape
        h = self.embed(input_ids)
        cos, sin = self.rotary.cos_sin(positions)
        for i, layer in enumerate(self.blocks):
            # [R, L, 3 * hidden] -> 3 x [R, H, L, D]
            q, k, v = layer.qkv(layer.norm1(h)).view(r, length, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
            q, k = self.rotary.apply(q, cos, sin), self.rotary.apply(k, cos, sin)
            h = h + layer.out(cached_attention(q, k, v, mask, cache, i, write))
            h = h + layer.mlp(layer.norm2(h))
        return self.head(self.norm(h)).float()


class _ScriptedNet(ReferenceModel):
    """Logits depend on the position only: at position p the token `script[p + shift]` gets
    logit `strength[p + shift]`, every other id 0 (shift = 1 for shifted-logit families)."""

    def __init__(self, script: dict[int, tuple[int, float]], shift: int = 0) -> None:
        super().__init__(None)
        self.script, self.shift = script, shift
        self.dummy = nn.Parameter(torch.zeros(1))  # gives the generators a device

    @property
    def num_layers(self) -> int:
        return 1

    def forward(self, input_ids, positions, mask=None, cache=None, write="none"):
        if cache is not None:  # keep the cache bookkeeping real: store / attend nothing else
            empty = torch.zeros(1, 1, input_ids.shape[1], 1)
            cache.update(0, empty, empty, write)
        logits = torch.zeros(*input_ids.shape, V)
        for j, p in enumerate(positions[0].tolist()):
            tok, strength = self.script.get(p + self.shift, (1, 0.5))
            logits[0, j, tok] = strength
        return logits


class _Recorder(ReferenceModel):
    """Wraps a network and records every forward: (input ids, positions, mask, cache length, write)."""

    def __init__(self, inner: ReferenceModel) -> None:
        super().__init__(None)
        self.inner = inner
        self.calls: list[tuple[list[int], list[int], torch.Tensor | None, int, object]] = []

    @property
    def num_layers(self) -> int:
        return self.inner.num_layers

    def forward(self, input_ids, positions, mask=None, cache=None, write="none"):
        length = cache.length if cache is not None else -1
        self.calls.append((input_ids[0].tolist(), positions[0].tolist(), mask, length, write))
        return self.inner(input_ids, positions, mask, cache, write)


def _family(arch: str, block: int):
    key = "bd_size" if arch.startswith("Fast") else "block_size"
    config = {
        "architectures": [arch], "vocab_size": V, "mask_token_id": MASK, "eos_token_id": EOS,
        "max_position_embeddings": 512, key: block,
    }
    return resolve(config)


def _loaded(arch: str, block: int, model: ReferenceModel | None = None) -> LoadedModel:
    return LoadedModel(model=model or _ToyNet(), family=_family(arch, block), model_dir=Path("."))


def _request(loaded: LoadedModel, prompt, max_tokens: int, algorithm: str, **kw) -> GenerationRequest:
    req = GenerationRequest(tuple(prompt), max_tokens, DecodeConfig(algorithm=algorithm, **kw))
    return validate_request(loaded, req)


# ------------------------------------------------- transcriptions of the originals


def _greedy(logits: torch.Tensor, mask_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """x0 = argmax, conf = softmax(logits)[x0] over the whole vocabulary (the originals'
    confidence); the project never proposes the mask token, so x0 is the best other one."""
    probs = torch.softmax(logits, dim=-1)
    others = logits.clone()
    others[..., mask_id] = NEG
    x0 = others.argmax(dim=-1)
    return x0, probs.gather(-1, x0[..., None]).squeeze(-1)


def _cut(tokens: list[int], stops) -> list[int]:
    for i, t in enumerate(tokens):
        if t in stops:
            return tokens[: i + 1]
    return tokens


def _sdar_original(model, prompt, gen_length, block, mask_id, stops, strategy, threshold, steps):
    """SDAR's `block_diffusion_generate` for temperature 0, with LLaDA2's clamp of topk to the
    masks left. Returns (generated ids cut at gen_length then at the first stop, nfe)."""
    p = len(prompt)
    num_blocks = -(-(p + gen_length) // block)
    x = torch.full((1, num_blocks * block), mask_id, dtype=torch.long)
    x[0, :p] = torch.tensor(prompt)
    pos = torch.arange(num_blocks * block)[None]
    cache, nfe = model.new_cache(), 0
    prefill = p // block * block
    if prefill:
        blocks = torch.arange(prefill) // block
        model(x[:, :prefill], pos[:, :prefill], (blocks[None, :] <= blocks[:, None])[None], cache, "append")
        nfe += 1
    per_step = [block // steps + (1 if i < block % steps else 0) for i in range(steps)]
    for b in range(p // block, num_blocks):
        cols = slice(b * block, (b + 1) * block)
        cur = x[:, cols].clone()
        for step in range(steps + 1):
            masked = cur == mask_id
            if not masked.any():
                model(cur, pos[:, cols], None, cache, "append")
                nfe += 1
                break
            logits = model(cur, pos[:, cols], None, cache, "none")
            nfe += 1
            x0, conf = _greedy(logits, mask_id)
            conf = torch.where(masked, conf, NEG)
            k = min(per_step[step], int(masked.sum()))
            high = conf[0] > threshold if strategy == "low_confidence_dynamic" else None
            pick = torch.zeros_like(masked)
            if high is not None and int(high.sum()) >= k:
                pick[0] = high
            else:
                pick[0, torch.topk(conf[0], k).indices] = True
            cur[pick] = x0[pick]
        x[:, cols] = cur
        if any(t in stops for t in x[0, p:].tolist()):
            break
    return _cut(x[0, p : p + gen_length].tolist(), stops), nfe


def _fast_dllm_original(model, prompt, max_tokens, block, sub, mask_id, stops, threshold):
    """Fast-dLLM v2's `generate` (no block cache) for temperature 0, run until max_tokens
    tokens exist. Returns (generated ids cut at max_tokens then at the first stop, nfe)."""
    p = len(prompt)
    ids = torch.tensor([list(prompt)])
    cache, nfe = model.new_cache(), 0

    def positions(lo: int, hi: int) -> torch.Tensor:
        return torch.arange(lo, hi)[None]

    if p >= block:
        n = p // block * block
        blocks = torch.arange(n) // block
        logits = model(ids[:, :n], positions(0, n), (blocks[None, :] <= blocks[:, None])[None], cache, "append")
        nfe += 1
        if p % block == 0:
            ids = torch.cat([ids, _greedy(logits[:, -1:], mask_id)[0]], dim=1)

    def stop_final(x: torch.Tensor, start: int) -> bool:
        region = x[0, start:].tolist()
        hits = [i for i, t in enumerate(region) if t in stops]
        return bool(hits) and mask_id not in region[: hits[0]]

    while ids.shape[1] < p + max_tokens and not any(t in stops for t in ids[0, p:].tolist()):
        start = ids.shape[1]
        x = torch.cat([ids, torch.full((1, block - start % block), mask_id)], dim=1)
        lo = x.shape[1] - block
        stopped = False
        while True:
            if stop_final(x, start):
                stopped = True
                break
            if not (x[:, lo:] == mask_id).any():
                logits = model(x[:, lo:], positions(lo, lo + block), None, cache, "append")
                nfe += 1
                x = torch.cat([x, _greedy(logits[:, -1:], mask_id)[0]], dim=1)
                break
            for s in range(0, block, sub):
                while True:
                    sub_masked = x[:, lo + s : lo + s + sub] == mask_id
                    if not sub_masked.any() or stop_final(x, start):
                        break
                    logits = model(x[:, lo:], positions(lo, lo + block), None, cache, "none")
                    nfe += 1
                    logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)[:, s : s + sub]
                    x1, conf = _greedy(logits, mask_id)
                    conf = torch.where(sub_masked, conf, NEG)
                    pick = conf > threshold
                    pick[0, conf[0].argmax()] = True
                    pick &= sub_masked
                    x[:, lo + s : lo + s + sub][pick] = x1[pick]
        ids = x
        if stopped:
            break
    return _cut(ids[0, p : p + max_tokens].tolist(), stops), nfe


# ------------------------------------------------------------ toy-network tests

SDAR = "SDARForCausalLM"
FAST = "Fast_dLLM_QwenForCausalLM"
TOY_PROMPTS = ((5,), (5, 9, 14, 20), (3, 1, 4, 1, 5), tuple(range(1, 17)), tuple(range(1, 18)))
ALGORITHMS = (
    ("low_confidence_dynamic", dict(threshold=0.3)),  # low tau: several tokens per step
    ("low_confidence", dict(steps=2)),  # fixed schedule, 2 steps per block
    ("threshold", dict(threshold=0.5)),
)


@pytest.mark.parametrize("algorithm,knobs", ALGORITHMS, ids=[a for a, _ in ALGORITHMS])
@pytest.mark.parametrize("arch,block", [(SDAR, 4), (FAST, 16)])
def test_cached_equals_recompute_toy(arch, block, algorithm, knobs):
    loaded = _loaded(arch, block)
    module = block_diffusion if arch == SDAR else fast_dllm_v2
    multi = 0
    for prompt in TOY_PROMPTS:
        for max_tokens in (1, 6, 13, 21):
            req = _request(loaded, prompt, max_tokens, algorithm, **knobs)
            cached, full = module.generate(loaded, req), module.generate_recompute(loaded, req)
            assert cached.token_ids == full.token_ids, (prompt, max_tokens)
            assert cached.finish_reason == full.finish_reason
            assert cached.steps == full.steps and cached.tokens_per_step == full.tokens_per_step
            assert len(cached.token_ids) == max_tokens or cached.finish_reason == "stop"
            multi += max(cached.tokens_per_step, default=0) > 1
    if algorithm != "threshold" or arch == FAST:
        assert multi > 0  # the schedules really committed several tokens in one step


@pytest.mark.parametrize("strategy,threshold,steps", [
    ("low_confidence_dynamic", 0.3, 4), ("low_confidence_dynamic", 0.9, 4), ("low_confidence", 0.0, 2),
])
def test_block_diffusion_matches_sdar_loop_toy(strategy, threshold, steps):
    block = 4
    loaded = _loaded(SDAR, block)
    for prompt in TOY_PROMPTS:
        for max_tokens in (1, 7, 16):
            knobs = dict(threshold=threshold) if strategy == "low_confidence_dynamic" else {}
            req = _request(loaded, prompt, max_tokens, strategy, steps=None if steps == block else steps, **knobs)
            got = block_diffusion.generate(loaded, req)
            want, nfe = _sdar_original(loaded.model, prompt, max_tokens, block, MASK, {EOS}, strategy, threshold, steps)
            assert got.token_ids == want, (prompt, max_tokens)
            assert got.nfe == nfe


@pytest.mark.parametrize("threshold", [0.0, 0.9])
def test_fast_dllm_matches_original_loop_toy(threshold):
    block, sub = 16, 8
    loaded = _loaded(FAST, block)
    for prompt in TOY_PROMPTS:
        for max_tokens in (1, 6, 17, 33):
            req = _request(loaded, prompt, max_tokens, "threshold", threshold=threshold)
            got = fast_dllm_v2.generate(loaded, req)
            want, nfe = _fast_dllm_original(loaded.model, prompt, max_tokens, block, sub, MASK, {EOS}, threshold)
            assert got.token_ids == want, (prompt, max_tokens)
            assert got.nfe == nfe, (prompt, max_tokens)


def test_greedy_is_deterministic_toy():
    for arch, block, module in ((SDAR, 4, block_diffusion), (FAST, 16, fast_dllm_v2)):
        loaded = _loaded(arch, block)
        req = _request(loaded, (3, 1, 4, 1, 5), 20, "low_confidence_dynamic", threshold=0.5)
        first, second = module.generate(loaded, req), module.generate(loaded, req)
        assert first == second


def test_registry_resolves_the_generators():
    assert get_generator("block_diffusion") is block_diffusion.generate
    assert get_generator("fast_dllm_v2") is fast_dllm_v2.generate


def test_block_causal_mask_shape_and_pattern():
    mask = block_causal_mask(4, 8, 12, 4, torch.device("cpu"))  # queries in block 1, keys in blocks 0..2
    assert mask.shape == (1, 4, 12)
    assert mask[0, :, :8].all() and not mask[0, :, 8:].any()
    full = block_causal_mask(0, 6, 6, 2, torch.device("cpu"))[0].int().tolist()
    assert full == [[1, 1, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0],
                    [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]]


# ------------------------------------------------- forwards, counts and stop rules


def test_block_diffusion_forward_schedule():
    """Prompt of 6 with block 4: prefill [0, 4) block-causal; block [4, 8) holds prompt 4, 5."""
    rec = _Recorder(_ToyNet())
    loaded = _loaded(SDAR, 4, rec)
    prompt = (7, 8, 9, 10, 11, 12)
    req = _request(loaded, prompt, 5, "low_confidence_dynamic", threshold=0.99)
    out = block_diffusion.generate(loaded, req)
    assert len(out.token_ids) == 5 and out.finish_reason == "length"
    ids, pos, mask, cached, write = rec.calls[0]
    assert ids == [7, 8, 9, 10] and pos == [0, 1, 2, 3] and cached == 0 and write == "append"
    assert mask is not None and mask.shape == (1, 4, 4) and bool(mask.all())
    # blocks [4, 8) (prompt at 4, 5) and [8, 12): steps read the cache, one commit each
    assert [c[4] for c in rec.calls[1:]].count("append") == 2
    assert out.nfe == len(rec.calls) == 1 + out.steps + 2
    for ids, pos, mask, cached, write in rec.calls[1:]:
        assert mask is None and len(pos) == 4 and pos[0] in (4, 8) and cached == pos[0]
        if pos[0] == 4:
            assert ids[:2] == [11, 12]  # prompt positions never change
        # a step still has a mask to fill; a commit forwards the final tokens
        assert (MASK in ids) == (write == "none")


def test_block_diffusion_recompute_forwards_block_causal_prefixes():
    rec = _Recorder(_ToyNet())
    loaded = _loaded(SDAR, 4, rec)
    req = _request(loaded, (7, 8, 9, 10, 11, 12), 5, "low_confidence_dynamic", threshold=0.99)
    out = block_diffusion.generate_recompute(loaded, req)
    assert out.nfe == out.steps == len(rec.calls)  # no prefill, no commit forwards
    for ids, pos, mask, cached, write in rec.calls:
        assert pos[0] == 0 and len(pos) in (8, 12) and cached == -1 and write == "none"
        assert ids[:6] == [7, 8, 9, 10, 11, 12]
        assert torch.equal(mask, block_causal_mask(0, len(pos), len(pos), 4, torch.device("cpu")))


def test_fast_dllm_forward_schedule():
    """Prompt of 17 with block 16: prefill [0, 16), then block [16, 32) against the cache."""
    rec = _Recorder(_ToyNet())
    loaded = _loaded(FAST, 16, rec)
    prompt = tuple(range(1, 18))
    out = fast_dllm_v2.generate(loaded, _request(loaded, prompt, 20, "threshold", threshold=0.9))
    assert len(out.token_ids) == 20 and out.nfe == len(rec.calls)
    ids, pos, mask, cached, write = rec.calls[0]
    assert ids == list(prompt[:16]) and pos == list(range(16)) and cached == 0 and write == "append"
    assert mask is not None and mask.shape == (1, 16, 16)
    commits = [c for c in rec.calls[1:] if c[4] == "append"]
    assert [c[1][0] for c in commits] == [16, 32]  # one commit per finished block
    for ids, pos, mask, cached, write in rec.calls[1:]:
        assert mask is None and len(pos) == 16 and cached == pos[0] and write in ("none", "append")
        if pos[0] == 16:
            assert ids[0] == 17  # the prompt's last token never changes
        else:  # block [32, 48) starts with the token appended from the commit of [16, 32)
            assert ids[0] == out.token_ids[32 - 17]
        assert (MASK in ids) == (write == "none")


def _script(tokens: dict[int, int], strength: float = 9.0, weak: dict[int, float] | None = None):
    weak = weak or {}
    return {p: (t, weak.get(p, strength)) for p, t in tokens.items()}


def test_block_diffusion_scripted_counts_and_stop():
    # block 4, prompt 6 -> blocks [4, 8), [8, 12), [12, 16); confident script -> one step per block
    script = {p: 10 + p for p in range(6, 20)}
    loaded = _loaded(SDAR, 4, _ScriptedNet(_script(script)))
    req = _request(loaded, (1, 2, 3, 4, 5, 6), 7, "low_confidence_dynamic", threshold=0.5)
    out = block_diffusion.generate(loaded, req)
    assert out.token_ids == [16, 17, 18, 19, 20, 21, 22] and out.finish_reason == "length"
    assert out.steps == 3 and out.tokens_per_step == [2, 4, 4]
    assert out.nfe == 1 + 3 + 3  # prefill + steps + one commit per block
    assert block_diffusion.generate_recompute(loaded, req).nfe == 3

    # a stop id at position 9 ends after block [8, 12), which is committed like every block
    script[9] = EOS
    loaded = _loaded(SDAR, 4, _ScriptedNet(_script(script)))
    out = block_diffusion.generate(loaded, _request(loaded, (1, 2, 3, 4, 5, 6), 7, "low_confidence_dynamic", threshold=0.5))
    assert out.token_ids == [16, 17, 18, EOS] and out.finish_reason == "stop"
    assert out.nfe == 1 + 2 + 2

    # a stop id beyond max_tokens (position 15 of the padded last block) is not an output
    script[9] = 19
    script[15] = EOS
    loaded = _loaded(SDAR, 4, _ScriptedNet(_script(script)))
    out = block_diffusion.generate(loaded, _request(loaded, (1, 2, 3, 4, 5, 6), 7, "low_confidence_dynamic", threshold=0.5))
    assert out.token_ids == [16, 17, 18, 19, 20, 21, 22] and out.finish_reason == "length"


def test_block_diffusion_weak_positions_take_extra_steps():
    # tau 0.5 with strength 1.0 (conf ~ 0.04) at positions 9 and 10: block [8, 12) needs
    # three steps (the strong pair at once, then one weak position per step)
    script = _script({p: 10 + p for p in range(4, 12)}, weak={9: 1.0, 10: 1.0})
    loaded = _loaded(SDAR, 4, _ScriptedNet(script))
    out = block_diffusion.generate(loaded, _request(loaded, (1, 2, 3, 4), 8, "low_confidence_dynamic", threshold=0.5))
    assert out.token_ids == [14, 15, 16, 17, 18, 19, 20, 21]
    assert out.tokens_per_step == [4, 2, 1, 1] and out.nfe == 1 + 4 + 2


def test_fast_dllm_scripted_ar_token_and_counts():
    # block 16, sub-blocks 8, prompt 5: sub-block [5, 8) then [8, 16) in one step each;
    # the commit forward's last logit gives the token at 16
    script = {p: 10 + p for p in range(5, 40)}
    loaded = _loaded(FAST, 16, _ScriptedNet(_script(script), shift=1))
    out = fast_dllm_v2.generate(loaded, _request(loaded, (1, 2, 3, 4, 5), 12, "threshold", threshold=0.5))
    assert out.token_ids == [10 + p for p in range(5, 17)] and out.finish_reason == "length"
    assert out.tokens_per_step == [3, 8] and out.nfe == 2 + 1

    # a whole-block prompt: prefill (block-causal), then the AR token from its last logit
    prompt = tuple(range(1, 17))
    out = fast_dllm_v2.generate(loaded, _request(loaded, prompt, 1, "threshold", threshold=0.5))
    assert out.token_ids == [26] and out.nfe == 1 and out.steps == 0
    out = fast_dllm_v2.generate(loaded, _request(loaded, prompt, 17, "threshold", threshold=0.5))
    assert out.token_ids == [10 + p for p in range(16, 33)]
    assert out.tokens_per_step == [7, 8] and out.nfe == 1 + 2 + 1


def test_fast_dllm_stop_rules():
    base = {p: 10 + p for p in range(5, 40)}
    prompt = (1, 2, 3, 4, 5)

    def run(script, max_tokens=20, weak=None):
        loaded = _loaded(FAST, 16, _ScriptedNet(_script(script, weak=weak), shift=1))
        return fast_dllm_v2.generate(loaded, _request(loaded, prompt, max_tokens, "threshold", threshold=0.5))

    # stop in sub-block [5, 8): the next sub-block is never forwarded, no commit forward
    out = run({**base, 6: EOS})
    assert out.token_ids == [15, EOS] and out.finish_reason == "stop" and out.nfe == 1
    # stop at 11 while 9 is still masked (weak): one more step fills 9, then it ends
    out = run({**base, 11: EOS}, weak={9: 1.0})
    assert out.token_ids == [15, 16, 17, 18, 19, 20, EOS] and out.nfe == 1 + 2
    assert out.tokens_per_step == [3, 7, 1]
    # the AR token of a committed block is a stop id
    out = run({**base, 16: EOS})
    assert out.token_ids == [10 + p for p in range(5, 16)] + [EOS] and out.nfe == 3
    # a stop id past max_tokens is not an output
    out = run({**base, 12: EOS}, max_tokens=4)
    assert out.token_ids == [15, 16, 17, 18] and out.finish_reason == "length"


# ------------------------------------------------------------ real tiny checkpoints

BLOCK_ARCHS = ("SDARForCausalLM", "SDARMoeForCausalLM", "LLaDA2MoeModelLM")
# the tiny checkpoints are nearly flat over 2048 ids (conf ~ 1e-3): tau 0.001 mixes steps
# that commit one token with steps that commit several
REAL_ALGORITHMS = (
    ("low_confidence_dynamic", dict(threshold=0.001)),
    ("low_confidence", dict(steps=2)),
    ("threshold", dict(threshold=0.001)),
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """arch -> LoadedModel of the real tiny checkpoint (built once per module)."""
    from dllm_backend.core.reference.loading import load_reference
    from dllm_backend.core.tiny import make_tiny

    cache: dict[str, LoadedModel] = {}

    def get(arch: str) -> LoadedModel:
        if arch not in cache:
            out = tmp_path_factory.mktemp(arch)
            make_tiny(arch, out, seed=0)
            cache[arch] = load_reference(out)
        return cache[arch]

    return get


def _real_cases(block: int):
    """(prompt, max_tokens, algorithm, knobs): prompt lengths on and off the block boundary."""
    lengths = (1, block - 1, block, block + 3)
    max_tokens = (3, block + 2, 2, block + 3)
    for i, (n, m) in enumerate(zip(lengths, max_tokens)):
        algorithm, knobs = REAL_ALGORITHMS[i % len(REAL_ALGORITHMS)]
        yield tuple(3 + (7 * j) % 50 for j in range(n)), m, algorithm, knobs


@pytest.mark.parametrize("arch", BLOCK_ARCHS)
def test_real_block_diffusion_cached_equals_recompute(tiny, arch):
    loaded = tiny(arch)
    multi = 0
    for prompt, max_tokens, algorithm, knobs in _real_cases(loaded.family.block_size):
        req = _request(loaded, prompt, max_tokens, algorithm, **knobs)
        cached = block_diffusion.generate(loaded, req)
        full = block_diffusion.generate_recompute(loaded, req)
        assert cached.token_ids == full.token_ids, (algorithm, len(prompt), max_tokens)
        assert cached.finish_reason == full.finish_reason and cached.steps == full.steps
        assert len(cached.token_ids) == max_tokens or cached.finish_reason == "stop"
        assert loaded.family.mask_id not in cached.token_ids
        multi += max(cached.tokens_per_step) > 1
    assert multi > 0


@pytest.mark.parametrize("arch", BLOCK_ARCHS)
def test_real_block_diffusion_matches_sdar_loop(tiny, arch):
    loaded = tiny(arch)
    fam = loaded.family
    block = fam.block_size
    for prompt, max_tokens, _, _ in _real_cases(block):
        req = _request(loaded, prompt, max_tokens, "low_confidence_dynamic", threshold=0.001)
        got = block_diffusion.generate(loaded, req)
        want, nfe = _sdar_original(
            loaded.model, prompt, max_tokens, block, fam.mask_id, set(fam.eos_ids),
            "low_confidence_dynamic", 0.001, block,
        )
        assert got.token_ids == want and got.nfe == nfe, (len(prompt), max_tokens)
    assert block_diffusion.generate(loaded, req) == got  # greedy is deterministic


def test_real_fast_dllm_cached_equals_recompute(tiny):
    loaded = tiny(FAST)
    for prompt, max_tokens, algorithm, knobs in _real_cases(loaded.family.block_size):
        req = _request(loaded, prompt, max_tokens, algorithm, **knobs)
        cached = fast_dllm_v2.generate(loaded, req)
        full = fast_dllm_v2.generate_recompute(loaded, req)
        assert cached.token_ids == full.token_ids, (algorithm, len(prompt), max_tokens)
        assert cached.finish_reason == full.finish_reason and cached.steps == full.steps
        assert len(cached.token_ids) == max_tokens or cached.finish_reason == "stop"
        assert loaded.family.mask_id not in cached.token_ids


def test_real_fast_dllm_matches_original_loop(tiny):
    loaded = tiny(FAST)
    fam = loaded.family
    block, sub = fam.block_size, fam.spec.sub_block_size
    for prompt, max_tokens, _, _ in _real_cases(block):
        req = _request(loaded, prompt, max_tokens, "threshold", threshold=0.001)
        got = fast_dllm_v2.generate(loaded, req)
        want, nfe = _fast_dllm_original(
            loaded.model, prompt, max_tokens, block, sub, fam.mask_id, set(fam.eos_ids), 0.001
        )
        assert got.token_ids == want and got.nfe == nfe, (len(prompt), max_tokens)
    assert fast_dllm_v2.generate(loaded, req) == got  # greedy is deterministic
