"""Tests of the block-causal families' reference networks and config classes.

SDAR, SDAR-MoE, LLaDA2 (BailingMoeV2) and Fast-dLLM v2 are built from their `TINY_CONFIG`,
initialised from a seeded generator, written as a real checkpoint directory (safetensors +
config.json) and loaded back through `load_reference`. The logits are compared with
independent transcriptions of the original HF forwards written below (eager attention with
an additive mask, `repeat_kv`, HF RoPE tables, Qwen3-MoE's one-hot expert loop, BailingMoeV2's
sorted `moe_infer`), routing with hand-computed cases.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from dllm_backend.core.configs import fast_dllm, llada2, sdar, sdar_moe
from dllm_backend.core.families import FAMILIES
from dllm_backend.core.reference import loading
from dllm_backend.core.reference.kv_cache import KVCache
from dllm_backend.core.reference.loading import load_reference
from dllm_backend.core.reference.models.llada2 import LLaDA2MoeGate, LLaDA2MoeSparseMoeBlock, group_limited_topk
from dllm_backend.core.reference.models.sdar_moe import SDARMoeSparseMoeBlock, softmax_topk

TOL_ORACLE = 1e-4  # max abs logit difference vs the transcribed original forward (float32)
TOL_CACHE = 1e-5  # cached vs uncached forward


@dataclass(frozen=True)
class Case:
    arch: str
    module: ModuleType
    layer0: tuple[str, ...]  # exact real-checkpoint names of layer 0 (after "model.layers.0.")
    top: tuple[str, ...]  # names outside the layers
    extra_layer1: tuple[str, ...] = ()  # names of layer 1 that layer 0 lacks (LLaDA2: dense layer 0)


_QWEN3_ATTN = ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
               "self_attn.o_proj.weight", "self_attn.q_norm.weight", "self_attn.k_norm.weight")
_NORMS = ("input_layernorm.weight", "post_attention_layernorm.weight")
_MLP = ("mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight")
_EXPERTS = tuple(f"mlp.experts.{e}.{p}_proj.weight" for e in range(8) for p in ("gate", "up", "down"))

CASES = {
    "SDARForCausalLM": Case(
        "SDARForCausalLM", sdar, _QWEN3_ATTN + _MLP + _NORMS,
        ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"),
    ),
    "SDARMoeForCausalLM": Case(
        "SDARMoeForCausalLM", sdar_moe, _QWEN3_ATTN + ("mlp.gate.weight",) + _EXPERTS + _NORMS,
        ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"),
    ),
    "LLaDA2MoeModelLM": Case(
        "LLaDA2MoeModelLM", llada2,
        ("attention.query_key_value.weight", "attention.query_layernorm.weight",
         "attention.key_layernorm.weight", "attention.dense.weight") + _MLP + _NORMS,
        ("model.word_embeddings.weight", "model.norm.weight", "lm_head.weight"),
        extra_layer1=("mlp.gate.weight", "mlp.gate.expert_bias") + _EXPERTS
        + ("mlp.shared_experts.gate_proj.weight", "mlp.shared_experts.up_proj.weight",
           "mlp.shared_experts.down_proj.weight"),
    ),
    "Fast_dLLM_QwenForCausalLM": Case(
        "Fast_dLLM_QwenForCausalLM", fast_dllm,
        ("self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight",
         "self_attn.k_proj.bias", "self_attn.v_proj.weight", "self_attn.v_proj.bias",
         "self_attn.o_proj.weight") + _MLP + _NORMS,
        ("model.embed_tokens.weight", "model.norm.weight"),  # lm_head tied (1.5B layout): not stored
    ),
}
ARCHS = tuple(CASES)


# ---------------------------------------------------------------- building and loading


def _config(arch: str, **overrides):
    spec = FAMILIES.get(arch)
    return spec.load_class("config_class")(**{**CASES[arch].module.TINY_CONFIG, **overrides})


def _build(arch: str, seed: int = 0, **overrides):
    config = _config(arch, **overrides)
    model = FAMILIES.get(arch).load_class("reference_model")(config)
    model.init_weights(torch.Generator().manual_seed(seed))
    return model.eval()


def _checkpoint_state(model) -> dict[str, torch.Tensor]:
    """state_dict as HF saves it: a tied lm_head is left out."""
    tie = bool(getattr(model.config, "tie_word_embeddings", False))
    return {k: v.contiguous() for k, v in model.state_dict().items() if not (tie and k in model.tied_weights)}


def _write_checkpoint(model, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    save_file(_checkpoint_state(model), str(out / "model.safetensors"))
    (out / "config.json").write_text(json.dumps(_with_mask_id(model.config.to_dict()), default=str))
    return out


def _with_mask_id(config: dict) -> dict:
    """A config-only checkpoint must name its mask id (real LLaDA2 / Fast-dLLM v2 ones take it
    from their tokenizer; the families' fallback ids are outside the tiny vocabulary)."""
    if config.get("mask_token_id") is None:
        config = {**config, "mask_token_id": config["vocab_size"] - 1}
    return config


@pytest.fixture
def only_our_configs(monkeypatch: pytest.MonkeyPatch) -> None:
    """`load_reference` registers every family's config class; while a sibling family's config
    module is not written yet, register only the importable ones (ours included)."""
    missing = []
    for _, spec in FAMILIES.items():
        try:
            spec.load_class("config_class")
        except (ImportError, AttributeError):
            missing.append(spec.architecture)
    if not missing:
        return

    def register_available() -> None:
        from transformers import AutoConfig

        for _, spec in FAMILIES.items():
            if spec.architecture not in missing:
                AutoConfig.register(spec.model_type, spec.load_class("config_class"), exist_ok=True)

    monkeypatch.setattr(loading, "register_configs", register_available)


def _inputs(length: int = 12, rows: int = 2, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, 2000, (rows, length), generator=torch.Generator().manual_seed(seed))
    return ids, torch.arange(length)[None].expand(rows, -1)


def block_causal_mask(length: int, block: int, start: int = 0, rows: int = 2) -> torch.Tensor:
    """[rows, L, start + L] bool: query q sees key k iff block(k) <= block(q), absolute positions."""
    q = torch.arange(start, start + length)[:, None] // block
    k = torch.arange(start + length)[None, :] // block
    return (k <= q)[None].expand(rows, -1, -1)


# ---------------------------------------------------------------- the transcribed originals


def _rms(x, w, eps, weight_in_fp32):
    h = x.float()
    h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
    # SDAR normalises with flash-attn's fused kernel (weight in fp32); the others as HF Llama
    return (h * w.float()).to(x.dtype) if weight_in_fp32 else w * h.to(x.dtype)


def _rope(x, pos, head_dim, theta, factor=1.0):
    dim = int(head_dim * factor)
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    freqs = (inv[None, :, None].expand(pos.shape[0], -1, 1) @ pos[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None].to(x.dtype), emb.sin()[:, None].to(x.dtype)
    xr, xp = x[..., :dim], x[..., dim:]
    half = torch.cat((-xr[..., dim // 2:], xr[..., : dim // 2]), dim=-1)
    return torch.cat((xr * cos + half * sin, xp), dim=-1)


def _eager_attention(q, k, v, allowed):
    b, h, length, d = q.shape
    rep = h // k.shape[1]
    k = k[:, :, None].expand(b, k.shape[1], rep, *k.shape[2:]).reshape(b, h, -1, d)
    v = v[:, :, None].expand(b, v.shape[1], rep, *v.shape[2:]).reshape(b, h, -1, d)
    w = q @ k.transpose(2, 3) * d**-0.5
    if allowed is not None:
        w = w + torch.zeros_like(allowed, dtype=w.dtype).masked_fill(~allowed, torch.finfo(w.dtype).min)[:, None]
    w = torch.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
    return (w @ v).transpose(1, 2).reshape(b, length, h * d)


def _mlp(sd, p, x):
    return F.linear(F.silu(F.linear(x, sd[p + "gate_proj.weight"])) * F.linear(x, sd[p + "up_proj.weight"]),
                    sd[p + "down_proj.weight"])


def _qwen3_moe(sd, p, x, c):
    """HF Qwen3MoeSparseMoeBlock (v4.52) forward, eval mode."""
    b, s, hid = x.shape
    flat = x.view(-1, hid)
    rw = F.softmax(F.linear(flat, sd[p + "gate.weight"]), dim=1, dtype=torch.float)
    rw, sel = torch.topk(rw, c.num_experts_per_tok, dim=-1)
    if c.norm_topk_prob:
        rw /= rw.sum(dim=-1, keepdim=True)
    rw = rw.to(x.dtype)
    final = torch.zeros_like(flat)
    expert_mask = F.one_hot(sel, num_classes=c.num_experts).permute(2, 1, 0)
    for e in range(c.num_experts):
        idx, top_x = torch.where(expert_mask[e])
        cur = _mlp(sd, f"{p}experts.{e}.", flat[None, top_x].reshape(-1, hid)) * rw[top_x, idx, None]
        final.index_add_(0, top_x, cur.to(x.dtype))
    return final.view(b, s, hid)


def _bailing_moe(sd, p, x, c):
    """BailingMoeV2 gate + `moe_infer` (the sorted-token path of the original) + shared expert."""
    b, s, hid = x.shape
    flat = x.view(-1, hid)
    logits = F.linear(flat.float(), sd[p + "gate.weight"].float())
    scores = torch.sigmoid(logits)
    biased = scores + sd[p + "gate.expert_bias"]
    n = flat.shape[0]
    gs = biased.view(n, c.n_group, -1).topk(2, dim=-1)[0].sum(dim=-1)
    gidx = torch.topk(gs, k=c.topk_group, dim=-1, sorted=False)[1]
    gmask = torch.zeros_like(gs).scatter_(1, gidx, 1)
    smask = gmask.unsqueeze(-1).expand(n, c.n_group, c.num_experts // c.n_group).reshape(n, -1)
    topk_idx = torch.topk(biased.masked_fill(~smask.bool(), float("-inf")), k=c.num_experts_per_tok, dim=-1)[1]
    w = torch.gather(scores, 1, topk_idx)
    w = (w / (w.sum(dim=-1, keepdim=True) + 1e-20) if c.num_experts_per_tok > 1 else w) * c.routed_scaling_factor
    idxs = topk_idx.view(-1).argsort()
    sorted_tokens = flat[idxs // topk_idx.shape[1]]
    counts = torch.bincount(topk_idx.view(-1), minlength=c.num_experts).tolist()
    outs, start = [], 0
    for e, cnt in enumerate(counts):
        if cnt:
            outs.append(_mlp(sd, f"{p}experts.{e}.", sorted_tokens[start:start + cnt]))
            start += cnt
    cat = torch.cat(outs)
    new_x = torch.empty_like(cat)
    new_x[idxs] = cat
    y = new_x.view(*topk_idx.shape, -1).float().mul_(w.unsqueeze(-1)).sum(dim=1).to(x.dtype)
    return y.view(b, s, hid) + _mlp(sd, p + "shared_experts.", x)


def _oracle(arch: str, model, ids, pos, allowed) -> torch.Tensor:
    c, sd = model.config, model.state_dict()
    llada = arch == "LLaDA2MoeModelLM"
    fp32w = arch.startswith("SDAR")
    heads, kv = c.num_attention_heads, c.num_key_value_heads
    d = getattr(c, "head_dim", None) or c.hidden_size // heads
    x = F.embedding(ids, sd["model.word_embeddings.weight" if llada else "model.embed_tokens.weight"])
    b, length, _ = x.shape
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        h = _rms(x, sd[p + "input_layernorm.weight"], c.rms_norm_eps, fp32w)
        if llada:
            qkv = F.linear(h, sd[p + "attention.query_key_value.weight"]).view(b, length, heads + 2 * kv, d)
            q, k, v = (t.transpose(1, 2) for t in qkv.split([heads, kv, kv], dim=-2))
            q = _rms(q, sd[p + "attention.query_layernorm.weight"], c.rms_norm_eps, False)
            k = _rms(k, sd[p + "attention.key_layernorm.weight"], c.rms_norm_eps, False)
            factor, out_w = c.partial_rotary_factor, sd[p + "attention.dense.weight"]
        else:
            a = p + "self_attn."
            q = F.linear(h, sd[a + "q_proj.weight"], sd.get(a + "q_proj.bias")).view(b, length, heads, d)
            k = F.linear(h, sd[a + "k_proj.weight"], sd.get(a + "k_proj.bias")).view(b, length, kv, d)
            v = F.linear(h, sd[a + "v_proj.weight"], sd.get(a + "v_proj.bias")).view(b, length, kv, d)
            if a + "q_norm.weight" in sd:
                q = _rms(q, sd[a + "q_norm.weight"], c.rms_norm_eps, fp32w)
                k = _rms(k, sd[a + "k_norm.weight"], c.rms_norm_eps, fp32w)
            q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
            factor, out_w = 1.0, sd[a + "o_proj.weight"]
        q, k = _rope(q, pos, d, c.rope_theta, factor), _rope(k, pos, d, c.rope_theta, factor)
        x = x + F.linear(_eager_attention(q, k, v, allowed), out_w)
        h = _rms(x, sd[p + "post_attention_layernorm.weight"], c.rms_norm_eps, fp32w)
        if p + "mlp.gate.expert_bias" in sd:
            x = x + _bailing_moe(sd, p + "mlp.", h, c)
        elif p + "mlp.gate.weight" in sd:
            x = x + _qwen3_moe(sd, p + "mlp.", h, c)
        else:
            x = x + _mlp(sd, p + "mlp.", h)
    x = _rms(x, sd["model.norm.weight"], c.rms_norm_eps, fp32w)
    return F.linear(x, sd["lm_head.weight"]).float()


# ---------------------------------------------------------------- tests: weights and loading


@pytest.mark.parametrize("arch", ARCHS)
def test_state_dict_names_are_the_real_checkpoint_names(arch: str) -> None:
    case = CASES[arch]
    state = _checkpoint_state(_build(arch))
    layer0 = sorted(k.removeprefix("model.layers.0.") for k in state if k.startswith("model.layers.0."))
    assert layer0 == sorted(case.layer0)
    layer1 = sorted(k.removeprefix("model.layers.1.") for k in state if k.startswith("model.layers.1."))
    if case.extra_layer1:  # LLaDA2: layer 0 dense (first_k_dense_replace = 1), layer 1 MoE
        dense = set(_MLP)
        assert layer1 == sorted((set(case.layer0) - dense) | set(case.extra_layer1))
    else:
        assert layer1 == layer0
    assert sorted(k for k in state if not k.startswith("model.layers.")) == sorted(case.top)


@pytest.mark.parametrize("arch", ARCHS)
def test_seeded_init_is_bit_exact_and_hf_style(arch: str) -> None:
    a, b, other = _build(arch, seed=3), _build(arch, seed=3), _build(arch, seed=4)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["lm_head.weight"], other.state_dict()["lm_head.weight"])
    assert torch.equal(sa["model.norm.weight"], torch.ones(128))
    std = float(sa["lm_head.weight"].std())
    assert abs(std - 0.02) < 0.0005  # normal(0, initializer_range) over 2048 x 128 draws
    if arch == "Fast_dLLM_QwenForCausalLM":
        assert torch.equal(sa["model.layers.0.self_attn.q_proj.bias"], torch.zeros(128))


@pytest.mark.parametrize("arch", ARCHS)
def test_checkpoint_round_trip_through_load_reference(arch: str, tmp_path: Path, only_our_configs) -> None:
    model = _build(arch)
    d = _write_checkpoint(model, tmp_path / arch)
    loaded = load_reference(d)
    assert type(loaded.model) is type(model)
    assert loaded.family.spec.architecture == arch
    ids, pos = _inputs()
    mask = block_causal_mask(12, 4)
    with torch.no_grad():
        assert torch.equal(loaded.model(ids, pos, mask), model(ids, pos, mask))
    if arch == "Fast_dLLM_QwenForCausalLM":  # tied head: absent from the file, shared after loading
        m = loaded.model
        assert m.lm_head.weight.data_ptr() == m.model.embed_tokens.weight.data_ptr()


def test_resolved_block_sizes_come_from_the_real_keys() -> None:
    from dllm_backend.core.families import resolve

    expected = {"SDARForCausalLM": 4, "SDARMoeForCausalLM": 4, "LLaDA2MoeModelLM": 32,
                "Fast_dLLM_QwenForCausalLM": 32}
    for arch, block in expected.items():
        assert resolve(_with_mask_id(_config(arch).to_dict())).block_size == block


# ---------------------------------------------------------------- tests: numerics


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("pattern", ["block_causal", "bidirectional"])
def test_logits_match_the_transcribed_original(arch: str, pattern: str) -> None:
    model = _build(arch)
    ids, pos = _inputs()
    mask = block_causal_mask(12, 4) if pattern == "block_causal" else None
    with torch.no_grad():
        ours, ref = model(ids, pos, mask), _oracle(arch, model, ids, pos, mask)
    assert ours.shape == (2, 12, 2048) and ours.dtype == torch.float32
    assert (ours - ref).abs().max().item() < TOL_ORACLE


def _native_qwen(arch: str):
    """transformers' own Qwen3 / Qwen2 / Qwen3-MoE with the tiny shape, and a state_dict converter."""
    import transformers as tf

    shape = dict(vocab_size=2048, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                 num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-6,
                 rope_parameters={"rope_type": "default", "rope_theta": 1e6}, attn_implementation="eager")
    if arch == "Fast_dLLM_QwenForCausalLM":
        return tf.Qwen2ForCausalLM(tf.Qwen2Config(**shape, tie_word_embeddings=True)), dict
    if arch == "SDARForCausalLM":
        return tf.Qwen3ForCausalLM(tf.Qwen3Config(**shape, head_dim=32)), dict
    moe = tf.Qwen3MoeConfig(**shape, head_dim=32, moe_intermediate_size=64, num_experts=8,
                            num_experts_per_tok=2, norm_topk_prob=True)

    def fuse_experts(sd: dict) -> dict:  # transformers 5 stores experts as [E, 2 * I, H] / [E, H, I]
        sd = dict(sd)
        for i in range(2):
            p = f"model.layers.{i}.mlp.experts."
            sd[p + "gate_up_proj"] = torch.stack(
                [torch.cat([sd.pop(f"{p}{e}.gate_proj.weight"), sd.pop(f"{p}{e}.up_proj.weight")]) for e in range(8)])
            sd[p + "down_proj"] = torch.stack([sd.pop(f"{p}{e}.down_proj.weight") for e in range(8)])
        return sd

    return tf.Qwen3MoeForCausalLM(moe), fuse_experts


@pytest.mark.parametrize("arch", ["SDARForCausalLM", "SDARMoeForCausalLM", "Fast_dLLM_QwenForCausalLM"])
def test_qwen_families_match_transformers_native_models_under_a_causal_mask(arch: str) -> None:
    """SDAR = Qwen3, SDAR-MoE = Qwen3-MoE, Fast-dLLM v2 = Qwen2.5 weights: same logits under causal attention."""
    model = _build(arch)
    native, convert = _native_qwen(arch)
    native.load_state_dict(convert(model.state_dict()), strict=True)
    ids, pos = _inputs()
    causal = torch.ones(12, 12, dtype=torch.bool).tril()[None].expand(2, -1, -1)
    with torch.no_grad():
        ours, theirs = model(ids, pos, causal), native.eval()(input_ids=ids, position_ids=pos).logits.float()
    assert (ours - theirs).abs().max().item() < TOL_ORACLE


@pytest.mark.parametrize("arch", ARCHS)
def test_cache_append_then_rest_equals_one_full_forward(arch: str) -> None:
    model = _build(arch)
    ids, pos = _inputs()
    with torch.no_grad():
        full = model(ids, pos, block_causal_mask(12, 4))
        cache = KVCache(model.num_layers)
        prefix = model(ids[:, :8], pos[:, :8], block_causal_mask(8, 4), cache, "append")
        assert cache.length == 8
        # the last block sees every key: block-causal == no mask for it
        peek = model(ids[:, 8:], pos[:, 8:], None, cache, "none")
        assert cache.length == 8  # "none" stores nothing
        rest = model(ids[:, 8:], pos[:, 8:], block_causal_mask(4, 4, start=8), cache, "append")
        assert cache.length == 12
    assert (prefix - full[:, :8]).abs().max().item() < TOL_CACHE
    assert (rest - full[:, 8:]).abs().max().item() < TOL_CACHE
    assert torch.equal(peek, rest)


@pytest.mark.parametrize("arch", ARCHS)
def test_mask_is_honoured(arch: str) -> None:
    model = _build(arch)
    ids, pos = _inputs(rows=1)
    edited = ids.clone()
    edited[:, 8:] = (edited[:, 8:] + 7) % 2000  # change only the last block
    causal = block_causal_mask(12, 4, rows=1)
    with torch.no_grad():
        c0, c1 = model(ids, pos, causal), model(edited, pos, causal)
        b0, b1 = model(ids, pos, None), model(edited, pos, None)
    # block-causal: the first two blocks cannot see the third (up to float noise of MoE expert
    # batches that now hold other tokens); bidirectional: they can
    assert (c0[:, :8] - c1[:, :8]).abs().max().item() < TOL_CACHE
    assert (b0[:, :8] - b1[:, :8]).abs().max().item() > 1e-3
    assert (c0[:, :8] - b0[:, :8]).abs().max().item() > 1e-3


@pytest.mark.parametrize("arch", ARCHS)
def test_rope_is_relative_and_positions_matter(arch: str) -> None:
    model = _build(arch)
    ids, pos = _inputs(rows=1)
    with torch.no_grad():
        base = model(ids, pos)
        shifted = model(ids, pos + 5)  # RoPE sees only position differences
        spread = model(ids, pos * 3)
    assert (base - shifted).abs().max().item() < TOL_CACHE
    assert (base - spread).abs().max().item() > 1e-3


def test_bad_inputs_raise_value_error() -> None:
    model = _build("SDARForCausalLM")
    ids, pos = _inputs()
    with pytest.raises(ValueError, match="positions shape"):
        model(ids, pos[:, :5])
    with pytest.raises(ValueError, match="mask must be bool"):
        model(ids, pos, block_causal_mask(12, 4).float())


# ---------------------------------------------------------------- tests: routing by hand


def test_sdar_moe_softmax_topk_renormalises() -> None:
    logits = torch.tensor([[math.log(1.0), math.log(2.0), math.log(3.0), math.log(4.0)]])
    w, e = softmax_topk(logits, 2, renormalize=True)
    assert e.tolist() == [[3, 2]]
    assert torch.allclose(w, torch.tensor([[4 / 7, 3 / 7]]), atol=1e-6)
    w, e = softmax_topk(logits, 2, renormalize=False)
    assert torch.allclose(w, torch.tensor([[0.4, 0.3]]), atol=1e-6)


def test_sdar_moe_block_mixes_the_chosen_experts() -> None:
    config = _config("SDARMoeForCausalLM")
    block = _build("SDARMoeForCausalLM").model.layers[0].mlp
    assert isinstance(block, SDARMoeSparseMoeBlock)
    x = torch.randn(1, 3, 128, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        block.gate.weight.zero_()
        block.gate.weight[:, 0] = torch.log(torch.arange(1.0, 9.0))  # logits = x0 * log(1..8)
        x[..., 0] = 1.0  # every token: probs proportional to 1..8 -> experts 7 and 6, weights 8/15, 7/15
        out = block(x)
        want = 8 / 15 * block.experts[7](x) + 7 / 15 * block.experts[6](x)
    assert config.num_experts == 8 and config.num_experts_per_tok == 2
    assert (out - want).abs().max().item() < 1e-6


def _crafted_gate(expert_bias: list[float], top_k: int = 2) -> tuple[LLaDA2MoeGate, torch.Tensor]:
    gate = LLaDA2MoeGate(_config("LLaDA2MoeModelLM", num_experts_per_tok=top_k))
    scores = torch.tensor([0.9, 0.1, 0.8, 0.7, 0.2, 0.3, 0.6, 0.5])
    with torch.no_grad():
        gate.weight.zero_()
        gate.weight[:, 0] = torch.logit(scores)  # a one-hot token on channel 0 gets these sigmoid scores
        gate.expert_bias.copy_(torch.tensor(expert_bias))
    x = torch.zeros(1, 128)
    x[0, 0] = 1.0
    return gate, x


def test_llada2_group_limited_routing_by_hand() -> None:
    # groups {0,1} {2,3} {4,5} {6,7}; a group scores the sum of its best two: 1.0 1.5 0.5 1.1
    gate, x = _crafted_gate([0.0] * 8)
    experts, weights = gate(x)
    # groups 1 and 3 are kept, so expert 0 (score 0.9, group 0) is out; top-2 of {2,3,6,7}
    assert experts.tolist() == [[2, 3]]
    assert torch.allclose(weights, torch.tensor([[0.8, 0.7]]) / 1.5 * 2.5, atol=1e-6)


def test_llada2_expert_bias_selects_but_does_not_weigh() -> None:
    gate, x = _crafted_gate([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.0])
    experts, weights = gate(x)
    # biased: expert 6 -> 1.1, group 3 -> 1.6 beats group 1 (1.5); top-2 of {2:0.8, 3:0.7, 6:1.1, 7:0.5}
    assert experts.tolist() == [[6, 2]]
    # weights use the unbiased scores 0.6 and 0.8, renormalised, times routed_scaling_factor 2.5
    assert torch.allclose(weights, torch.tensor([[0.6, 0.8]]) / 1.4 * 2.5, atol=1e-6)


def test_llada2_top1_is_not_renormalised() -> None:
    gate, x = _crafted_gate([0.0] * 8, top_k=1)
    experts, weights = gate(x)
    assert experts.tolist() == [[2]]
    assert torch.allclose(weights, torch.tensor([[0.8 * 2.5]]), atol=1e-6)


def test_group_limited_topk_masks_dropped_groups() -> None:
    scores = torch.tensor([[5.0, 4.5, 1.0, 6.0, 4.0, 0.0]])  # 3 groups of 2: sums 9.5, 7, 4
    # group 2 is dropped, so expert 4 (4.0) loses to expert 2 (1.0) of kept group 1
    assert group_limited_topk(scores, n_group=3, topk_group=2, top_k=4).tolist() == [[3, 0, 1, 2]]


def test_llada2_moe_block_adds_the_shared_expert() -> None:
    block = _build("LLaDA2MoeModelLM").model.layers[1].mlp
    assert isinstance(block, LLaDA2MoeSparseMoeBlock)
    x = torch.randn(2, 3, 128, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        experts, weights = block.gate(x.view(-1, 128))
        flat = x.view(-1, 128)
        want = torch.stack([
            sum(weights[t, j] * block.experts[int(experts[t, j])](flat[t]) for j in range(2))
            for t in range(6)
        ]).view(2, 3, 128) + block.shared_experts(x)
        assert (block(x) - want).abs().max().item() < 1e-6


# ---------------------------------------------------------------- tests: configs


_REAL_KEYS = {  # keys of the published config.json files (SDAR-8B-Chat, LLaDA2.0-mini, Fast_dLLM_v2)
    "SDARForCausalLM": {
        "architectures", "auto_map", "attention_bias", "attention_dropout", "attn_implementation",
        "bos_token_id", "debug", "eos_token_id", "block_size", "mask_token_id", "ep_size",
        "fuse_cross_entropy", "head_dim", "hidden_act", "hidden_size", "initializer_range",
        "intermediate_size", "max_position_embeddings", "max_window_layers", "micro_forward",
        "model_type", "num_attention_heads", "num_hidden_layers", "num_key_value_heads",
        "rms_norm_eps", "rope_scaling", "rope_theta", "skip_checkpoint", "sliding_window",
        "tie_word_embeddings", "torch_dtype", "use_cache", "use_deepep", "use_sliding_window",
        "vocab_size",
    },
    "LLaDA2MoeModelLM": {
        "architectures", "attention_dropout", "auto_map", "num_hidden_layers", "hidden_size",
        "intermediate_size", "first_k_dense_replace", "hidden_act", "max_position_embeddings",
        "model_type", "moe_intermediate_size", "norm_topk_prob", "num_experts_per_tok", "norm_head",
        "num_attention_heads", "num_experts", "num_key_value_heads", "rope_theta", "rope_scaling",
        "tie_word_embeddings", "torch_dtype", "use_bias", "use_rmsnorm", "rms_norm_eps", "head_dim",
        "num_shared_experts", "use_cache", "use_qkv_bias", "embedding_dropout", "norm_softmax",
        "output_dropout", "vocab_size", "rotary_dim", "using_split_qkv_in_self_attention",
        "router_dtype", "moe_router_enable_expert_bias", "routed_scaling_factor", "n_group",
        "topk_group", "score_function", "initializer_range", "max_window_layers",
        "output_router_logits", "pad_token_id", "partial_rotary_factor", "use_sliding_window",
    },
    "Fast_dLLM_QwenForCausalLM": {
        "architectures", "auto_map", "attention_dropout", "bd_size", "bos_token_id", "eos_token_id",
        "hidden_act", "hidden_size", "initializer_range", "intermediate_size", "layer_types",
        "max_position_embeddings", "max_window_layers", "model_type", "num_attention_heads",
        "num_hidden_layers", "num_key_value_heads", "rms_norm_eps", "rope_scaling", "rope_theta",
        "sliding_window", "tie_word_embeddings", "torch_dtype", "use_cache", "use_sliding_window",
        "vocab_size",
    },
}
_REAL_KEYS["SDARMoeForCausalLM"] = _REAL_KEYS["SDARForCausalLM"] | {
    "decoder_sparse_step", "mlp_only_layers", "moe_intermediate_size", "norm_topk_prob", "num_experts",
    "num_experts_per_tok", "output_router_logits", "router_aux_loss_coef",
}


@pytest.mark.parametrize("arch", ARCHS)
def test_tiny_config_is_a_small_real_config(arch: str) -> None:
    spec, tiny = FAMILIES.get(arch), CASES[arch].module.TINY_CONFIG
    assert _REAL_KEYS[arch] <= set(tiny)
    assert tiny["architectures"] == [arch] and tiny["model_type"] == spec.model_type
    cls = spec.load_class("config_class")
    assert cls.model_type == spec.model_type
    c = cls(**tiny)
    assert (c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.vocab_size) == (2, 128, 4, 2048)
    assert (getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads) == 32
    assert c.num_key_value_heads == 2 and c.max_position_embeddings == 2048
    again = cls(**json.loads(json.dumps(c.to_dict(), default=str)))
    assert again.to_dict() == c.to_dict()


def test_config_defaults_are_the_published_checkpoints() -> None:
    s, m, l2, f = sdar.SDARConfig(), sdar_moe.SDARMoeConfig(), llada2.LLaDA2MoeConfig(), fast_dllm.Fast_dLLM_QwenConfig()
    assert (s.hidden_size, s.num_hidden_layers, s.block_size, s.mask_token_id, s.rope_theta) == (4096, 36, 4, 151669, 1e6)
    assert (m.num_experts, m.num_experts_per_tok, m.moe_intermediate_size, m.norm_topk_prob) == (128, 8, 768, True)
    assert (l2.num_experts, l2.n_group, l2.topk_group, l2.routed_scaling_factor, l2.partial_rotary_factor) == (
        256, 8, 4, 2.5, 0.5)
    assert (l2.first_k_dense_replace, l2.pad_token_id, l2.rope_theta) == (1, 156892, 600000)
    assert (f.bd_size, f.hidden_size, f.eos_token_id, f.layer_types) == (32, 3584, 151645, ["full_attention"] * 28)


@pytest.mark.parametrize(
    ("arch", "bad", "match"),
    [
        ("SDARForCausalLM", {"num_key_value_heads": 3}, "not a multiple of num_key_value_heads 3"),
        ("SDARForCausalLM", {"block_size": 0}, "block_size must be a positive integer, got 0"),
        ("SDARMoeForCausalLM", {"num_experts_per_tok": 9}, "num_experts_per_tok 9 exceeds num_experts 8"),
        ("LLaDA2MoeModelLM", {"n_group": 3}, "num_experts 8 is not a multiple of n_group 3"),
        ("LLaDA2MoeModelLM", {"num_experts_per_tok": 5}, "exceeds the 4 experts of the 2 kept groups"),
        ("Fast_dLLM_QwenForCausalLM", {"layer_types": ["full_attention"]}, "one of"),
    ],
)
def test_invalid_configs_raise_value_error_naming_the_value(arch: str, bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _config(arch, **bad)


def test_unsupported_features_are_refused_by_the_networks() -> None:
    with pytest.raises(ValueError, match="rope_scaling"):
        _build("SDARForCausalLM", rope_scaling={"rope_type": "yarn", "factor": 4.0})
    with pytest.raises(ValueError, match="norm_head"):
        _build("LLaDA2MoeModelLM", norm_head=True)

