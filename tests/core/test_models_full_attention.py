"""Reference networks and configs of the full-attention families: LLaDA, LLaDA-MoE, Dream.

Each network is checked against exact checkpoint names, a safetensors round trip through
`load_reference`, KV-cache equivalence under an explicit block-causal mask, and an
independent float64 re-implementation of the original forward written here from the
original modeling code's semantics (no shared helpers). Dream is also checked against
transformers' own Qwen2 implementation, whose tensor layout it shares.
"""
from __future__ import annotations

import json
import re
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from dllm_backend.core.configs import dream as dream_cfg
from dllm_backend.core.configs import llada as llada_cfg
from dllm_backend.core.configs import llada_moe as moe_cfg
from dllm_backend.core.reference.loading import load_reference
from dllm_backend.core.reference.models.dream import DreamModel
from dllm_backend.core.reference.models.llada import LLaDAModelLM
from dllm_backend.core.reference.models.llada_moe import LLaDAMoEModelLM, LLaDAMoESparseMoeBlock

VOCAB, MASK_ID, EOS_ID = 2048, 2047, 2046
SPECS = {
    "llada": (llada_cfg.LLaDAConfig, llada_cfg.TINY_CONFIG, LLaDAModelLM),
    "llada_moe": (moe_cfg.LLaDAMoEConfig, moe_cfg.TINY_CONFIG, LLaDAMoEModelLM),
    "dream": (dream_cfg.DreamConfig, dream_cfg.TINY_CONFIG, DreamModel),
}
FAMILIES = list(SPECS)

# Real checkpoint tensor names: every non-layer tensor plus all of layer 0.
LAYER0_NAMES = {
    "llada": [
        "model.transformer.wte.weight",
        "model.transformer.blocks.0.attn_norm.weight",
        "model.transformer.blocks.0.q_proj.weight",
        "model.transformer.blocks.0.k_proj.weight",
        "model.transformer.blocks.0.v_proj.weight",
        "model.transformer.blocks.0.attn_out.weight",
        "model.transformer.blocks.0.ff_norm.weight",
        "model.transformer.blocks.0.ff_proj.weight",
        "model.transformer.blocks.0.up_proj.weight",
        "model.transformer.blocks.0.ff_out.weight",
        "model.transformer.ln_f.weight",
        "model.transformer.ff_out.weight",
    ],
    "llada_moe": [
        "model.embed_tokens.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.v_proj.weight",
        "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.self_attn.q_norm.weight",
        "model.layers.0.self_attn.k_norm.weight",
        "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.mlp.gate.weight",
        *[
            f"model.layers.0.mlp.experts.{e}.{proj}.weight"
            for e in range(8)
            for proj in ("gate_proj", "up_proj", "down_proj")
        ],
        "model.norm.weight",
        "lm_head.weight",
    ],
    "dream": [
        "model.embed_tokens.weight",
        "model.layers.0.input_layernorm.weight",
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.q_proj.bias",
        "model.layers.0.self_attn.k_proj.weight",
        "model.layers.0.self_attn.k_proj.bias",
        "model.layers.0.self_attn.v_proj.weight",
        "model.layers.0.self_attn.v_proj.bias",
        "model.layers.0.self_attn.o_proj.weight",
        "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
        "model.norm.weight",
        "lm_head.weight",
    ],
}


def make_config(family: str, **overrides):
    cls, tiny, _ = SPECS[family]
    d = dict(tiny, vocab_size=VOCAB, eos_token_id=EOS_ID, pad_token_id=EOS_ID)
    if "mask_token_id" in d:
        d["mask_token_id"] = MASK_ID
    if family == "llada":
        d["embedding_size"] = VOCAB
    d.update(overrides)
    return cls.from_dict(d)


def make_model(family: str, seed: int = 0, **overrides):
    model = SPECS[family][2](make_config(family, **overrides))
    model.init_weights(torch.Generator().manual_seed(seed))
    return model.eval()


def inputs(r: int = 2, length: int = 12, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(0, VOCAB, (r, length), generator=torch.Generator().manual_seed(seed))
    return ids, torch.arange(length).expand(r, length)


def block_causal(length: int, block: int) -> torch.Tensor:
    blk = torch.arange(length) // block
    return blk[None, :] <= blk[:, None]  # [L, L]: a block sees itself and earlier blocks


# ---------------------------------------------------------------------------------------
# An independent float64 forward written from the original modeling code (no shared helpers)
# ---------------------------------------------------------------------------------------


def _rms(x, w, eps):
    return w * (x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps))


def _rope(x, pos, theta, rot):
    # x [R, H, L, D]: pairs (j, j + rot/2) rotate by pos * theta^(-2j/rot); the rest pass
    half = rot // 2
    j = torch.arange(half, dtype=torch.float64)
    ang = pos.double()[:, None, :, None] * theta ** (-2.0 * j / rot)  # [R, 1, L, half]
    c, s = torch.cos(ang), torch.sin(ang)
    a, b = x[..., :half], x[..., half:rot]
    return torch.cat([a * c - b * s, b * c + a * s, x[..., rot:]], dim=-1)


def _attend(q, k, v, mask):
    # q [R, H, L, D]; k, v [R, Hkv, L, D]; query head h reads kv head h // (H / Hkv)
    group = q.shape[1] // k.shape[1]
    k, v = k[:, torch.arange(q.shape[1]) // group], v[:, torch.arange(q.shape[1]) // group]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask[:, None], float("-inf"))
    out = scores.softmax(-1) @ v  # [R, H, L, D]
    return out.transpose(1, 2).reshape(q.shape[0], q.shape[2], -1)


def _heads(x, n):
    r, length, _ = x.shape
    return x.view(r, length, n, -1).transpose(1, 2)


def _lin(x, sd, name):
    y = x @ sd[name + ".weight"].T
    return y + sd[name + ".bias"] if name + ".bias" in sd else y


def _swiglu(x, sd, gate, up, down):
    return _lin(torch.nn.functional.silu(_lin(x, sd, gate)) * _lin(x, sd, up), sd, down)


def naive_llada(sd, c, ids, pos, mask):
    x, hd = sd["model.transformer.wte.weight"][ids], c.d_model // c.n_heads
    for i in range(c.n_layers):
        p = f"model.transformer.blocks.{i}."
        h = _rms(x, sd[p + "attn_norm.weight"], c.rms_norm_eps)
        q = _rope(_heads(_lin(h, sd, p + "q_proj"), c.n_heads), pos, c.rope_theta, hd)
        k = _rope(_heads(_lin(h, sd, p + "k_proj"), c.n_kv_heads), pos, c.rope_theta, hd)
        x = x + _lin(_attend(q, k, _heads(_lin(h, sd, p + "v_proj"), c.n_kv_heads), mask), sd, p + "attn_out")
        h = _rms(x, sd[p + "ff_norm.weight"], c.rms_norm_eps)
        x = x + _swiglu(h, sd, p + "ff_proj", p + "up_proj", p + "ff_out")
    return _lin(_rms(x, sd["model.transformer.ln_f.weight"], c.rms_norm_eps), sd, "model.transformer.ff_out")


def _naive_moe(h, sd, p, c):
    flat = h.reshape(-1, h.shape[-1])
    probs = (flat @ sd[p + "mlp.gate.weight"].T).softmax(-1)
    if p + "mlp.expert_bias" in sd:
        probs = probs + sd[p + "mlp.expert_bias"]
    out = torch.zeros_like(flat)
    for t in range(flat.shape[0]):
        for e in probs[t].argsort(descending=True)[: c.num_experts_per_tok].tolist():
            e_p = f"{p}mlp.experts.{e}."
            out[t] += probs[t, e] * _swiglu(flat[t], sd, e_p + "gate_proj", e_p + "up_proj", e_p + "down_proj")
    return out.view_as(h)


def naive_llada_moe(sd, c, ids, pos, mask):
    x, hd = sd["model.embed_tokens.weight"][ids], c.hidden_size // c.num_attention_heads
    rot = int(hd * c.partial_rotary_factor)
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        h = _rms(x, sd[p + "input_layernorm.weight"], c.rms_norm_eps)
        # per-head q/k norms come before RoPE
        q = _heads(_lin(h, sd, p + "self_attn.q_proj"), c.num_attention_heads)
        k = _heads(_lin(h, sd, p + "self_attn.k_proj"), c.num_key_value_heads)
        q = _rms(q, sd[p + "self_attn.q_norm.weight"], c.rms_norm_eps)
        k = _rms(k, sd[p + "self_attn.k_norm.weight"], c.rms_norm_eps)
        v = _heads(_lin(h, sd, p + "self_attn.v_proj"), c.num_key_value_heads)
        att = _attend(_rope(q, pos, c.rope_theta, rot), _rope(k, pos, c.rope_theta, rot), v, mask)
        x = x + _lin(att, sd, p + "self_attn.o_proj")
        h = _rms(x, sd[p + "post_attention_layernorm.weight"], c.rms_norm_eps)
        if c.moe_layer_freq[i]:
            out = _naive_moe(h, sd, p, c)
            if p + "shared_expert.gate_proj.weight" in sd:
                s_p = p + "shared_expert."
                out = out + _swiglu(h, sd, s_p + "gate_proj", s_p + "up_proj", s_p + "down_proj")
        else:
            out = _swiglu(h, sd, p + "mlp.gate_proj", p + "mlp.up_proj", p + "mlp.down_proj")
        x = x + out
    return _lin(_rms(x, sd["model.norm.weight"], c.rms_norm_eps), sd, "lm_head")


def naive_dream(sd, c, ids, pos, mask):
    x, hd = sd["model.embed_tokens.weight"][ids], c.hidden_size // c.num_attention_heads
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        h = _rms(x, sd[p + "input_layernorm.weight"], c.rms_norm_eps)
        q = _rope(_heads(_lin(h, sd, p + "self_attn.q_proj"), c.num_attention_heads), pos, c.rope_theta, hd)
        k = _rope(_heads(_lin(h, sd, p + "self_attn.k_proj"), c.num_key_value_heads), pos, c.rope_theta, hd)
        v = _heads(_lin(h, sd, p + "self_attn.v_proj"), c.num_key_value_heads)
        x = x + _lin(_attend(q, k, v, mask), sd, p + "self_attn.o_proj")
        h = _rms(x, sd[p + "post_attention_layernorm.weight"], c.rms_norm_eps)
        x = x + _swiglu(h, sd, p + "mlp.gate_proj", p + "mlp.up_proj", p + "mlp.down_proj")
    return _lin(_rms(x, sd["model.norm.weight"], c.rms_norm_eps), sd, "lm_head")


NAIVE = {"llada": naive_llada, "llada_moe": naive_llada_moe, "dream": naive_dream}


# ---------------------------------------------------------------------------------------
# Names, init, round trip
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_state_dict_names_are_the_real_checkpoint_names(family):
    keys = set(make_model(family).state_dict())
    later_layers = {k for k in keys if re.search(r"\.(layers|blocks)\.1\.", k)}
    assert sorted(keys - later_layers) == sorted(LAYER0_NAMES[family])
    # layer 1 repeats layer 0 exactly
    assert sorted(re.sub(r"\.1\.", ".0.", k, count=1) for k in later_layers) == sorted(
        k for k in LAYER0_NAMES[family] if ".0." in k
    )


def test_llada_moe_dense_layer_shared_expert_and_expert_bias_names():
    model = make_model(
        "llada_moe", moe_layer_freq=[0, 1], shared_expert_intermediate_size=96, moe_router_enable_expert_bias=True
    )
    keys = set(model.state_dict())
    assert {k for k in keys if k.startswith("model.layers.0.mlp.")} == {
        "model.layers.0.mlp.gate_proj.weight",
        "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight",
    }
    assert not any(k.startswith("model.layers.0.shared_expert") for k in keys)  # dense layers have none
    assert {k for k in keys if "layers.1.shared_expert" in k or k.endswith("expert_bias")} == {
        "model.layers.1.shared_expert.gate_proj.weight",
        "model.layers.1.shared_expert.up_proj.weight",
        "model.layers.1.shared_expert.down_proj.weight",
        "model.layers.1.mlp.expert_bias",
    }
    assert model.state_dict()["model.layers.1.shared_expert.gate_proj.weight"].shape == (96, 128)


@pytest.mark.parametrize("family", FAMILIES)
def test_seeded_init_is_bit_exact_and_hf_style(family):
    a, b, c = (make_model(family, seed=s).state_dict() for s in (7, 7, 8))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a[LAYER0_NAMES[family][2]], c[LAYER0_NAMES[family][2]])
    norms = [k for k in a if "norm" in k]
    assert norms and all(torch.equal(a[k], torch.ones_like(a[k])) for k in norms)
    assert all(torch.equal(a[k], torch.zeros_like(a[k])) for k in a if k.endswith(".bias"))
    emb = LAYER0_NAMES[family][0]
    assert abs(a[emb].std().item() - 0.02) < 0.001  # normal(0, 0.02)
    if family != "llada":  # HF zeroes the padding row of nn.Embedding(padding_idx=pad)
        assert torch.equal(a[emb][EOS_ID], torch.zeros(128))


def _with_mask_id(config: dict) -> dict:
    """A config-only checkpoint must name its mask id (real LLaDA-MoE takes it from its
    tokenizer; the family's fallback id is outside the tiny vocabulary)."""
    if config.get("mask_token_id") is None:
        config = {**config, "mask_token_id": config["vocab_size"] - 1}
    return config


@pytest.mark.parametrize("family", FAMILIES)
def test_safetensors_round_trip_through_load_reference(family, tmp_path: Path):
    model = make_model(family, seed=3)
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(_with_mask_id(model.config.to_dict())))
    loaded = load_reference(tmp_path)
    assert type(loaded.model) is type(model)
    assert loaded.family.spec.architecture == model.config.architectures[0]
    ids, pos = inputs()
    with torch.no_grad():
        assert torch.equal(model(ids, pos), loaded.model(ids, pos))


def test_tiny_configs_carry_real_model_types_and_keys():
    assert llada_cfg.TINY_CONFIG["model_type"] == "llada" == llada_cfg.LLaDAConfig.model_type
    assert dream_cfg.TINY_CONFIG["model_type"] == "Dream" == dream_cfg.DreamConfig.model_type
    # the released LLaDA-MoE config.json says "llada"; our class registers as "lladamoe"
    assert moe_cfg.TINY_CONFIG["model_type"] == "llada" and moe_cfg.LLaDAMoEConfig.model_type == "lladamoe"
    for family in FAMILIES:
        _, tiny, _ = SPECS[family]
        dumped = make_config(family).to_dict()
        assert set(tiny) - {"torch_dtype"} <= set(dumped), family  # torch_dtype is renamed dtype
    default = llada_cfg.LLaDAConfig()
    sizes = (default.d_model, default.n_layers, default.mlp_hidden_size, default.vocab_size)
    assert sizes == (4096, 32, 12288, 126464)
    assert (default.rope_theta, default.mask_token_id, default.weight_tying) == (500000.0, 126336, False)
    assert default.hidden_size == 4096 and default.num_attention_heads == 32  # engine-facing aliases


# ---------------------------------------------------------------------------------------
# Numerics: independent forward, transformers' Qwen2, cache, masks
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("masked", [False, True])
def test_matches_independent_float64_forward(family, masked):
    model = make_model(family, seed=2)
    ids, pos = inputs(length=9)
    mask = block_causal(9, 4).expand(2, 9, 9) if masked else None
    sd = {k: v.double() for k, v in model.state_dict().items()}
    with torch.no_grad():
        ours = model(ids, pos, mask=mask)
        ref = NAIVE[family](sd, model.config, ids, pos, mask)
    assert ours.shape == (2, 9, VOCAB)
    assert (ours.double() - ref).abs().max().item() < 1e-4


def test_llada_moe_variant_matches_independent_forward():
    # dense layer, shared expert, expert bias, GQA and partial rotary all at once
    model = make_model(
        "llada_moe", moe_layer_freq=[0, 1], shared_expert_intermediate_size=96,
        moe_router_enable_expert_bias=True, num_key_value_heads=2, partial_rotary_factor=0.5,
    )
    model.model.layers[1].mlp.expert_bias.copy_(torch.linspace(-0.1, 0.1, 8))
    ids, pos = inputs(length=7)
    sd = {k: v.double() for k, v in model.state_dict().items()}
    with torch.no_grad():
        diff = (model(ids, pos).double() - naive_llada_moe(sd, model.config, ids, pos, None)).abs().max()
    assert diff.item() < 1e-4


@pytest.mark.slow  # importing transformers' Qwen2 modeling takes several seconds
def test_dream_matches_transformers_qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model = make_model("dream", seed=5)
    c = model.config
    qwen = Qwen2ForCausalLM(Qwen2Config(
        vocab_size=VOCAB, hidden_size=c.hidden_size, intermediate_size=c.intermediate_size,
        num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
        num_key_value_heads=c.num_key_value_heads, rms_norm_eps=c.rms_norm_eps, rope_theta=c.rope_theta,
        max_position_embeddings=c.max_position_embeddings, tie_word_embeddings=False, attn_implementation="eager",
    )).eval()
    qwen.load_state_dict(model.state_dict(), strict=True)
    ids, pos = inputs(length=9)
    with torch.no_grad():
        tril = torch.ones(9, 9, dtype=torch.bool).tril().expand(2, 9, 9)
        causal = (qwen(ids).logits - model(ids, pos, mask=tril)).abs().max()
        full = (qwen(ids, attention_mask=torch.zeros(2, 1, 9, 9)).logits - model(ids, pos)).abs().max()
    assert causal.item() < 1e-5 and full.item() < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_prefix_cache_equals_full_forward_under_block_causal_mask(family):
    model = make_model(family, seed=4)
    ids, pos = inputs(length=12)
    m = block_causal(12, 4)
    with torch.no_grad():
        full = model(ids, pos, mask=m.expand(2, 12, 12))
        cache = model.new_cache()
        head = model(ids[:, :8], pos[:, :8], mask=m[:8, :8].expand(2, 8, 8), cache=cache, write="append")
        assert cache.length == 8
        tail = model(ids[:, 8:], pos[:, 8:], mask=m[8:].expand(2, 4, 12), cache=cache, write="none")
        assert cache.length == 8  # "none" attends but does not store
    assert (torch.cat([head, tail], dim=1) - full).abs().max().item() < 1e-5


@pytest.mark.parametrize("family", FAMILIES)
def test_the_mask_is_honoured(family):
    model = make_model(family, seed=6)
    ids, pos = inputs(length=8)
    causal = torch.ones(8, 8, dtype=torch.bool).tril().expand(2, 8, 8)
    with torch.no_grad():
        bidirectional = model(ids, pos)
        everything = model(ids, pos, mask=torch.ones(2, 8, 8, dtype=torch.bool))
        masked = model(ids, pos, mask=causal)
        first_alone = model(ids[:, :1], pos[:, :1])
    assert (bidirectional - everything).abs().max().item() < 1e-6  # None == all visible
    assert (bidirectional - masked).abs().max().item() > 1e-2  # a causal mask changes the logits
    assert (masked[:, :1] - first_alone).abs().max().item() < 1e-5  # position 0 then sees only itself


# ---------------------------------------------------------------------------------------
# Family specifics
# ---------------------------------------------------------------------------------------


def _router(bias: list[float] | None) -> LLaDAMoESparseMoeBlock:
    cfg = make_config("llada_moe", hidden_size=4, num_experts=4, num_experts_per_tok=2,
                      expert_intermediate_size=3, moe_router_enable_expert_bias=bias is not None)
    block = LLaDAMoESparseMoeBlock(cfg)
    init = torch.Generator().manual_seed(0)
    with torch.no_grad():
        block.gate.weight.copy_(torch.eye(4))  # router logits == the input itself
        for p in block.experts.parameters():
            p.normal_(0, 0.5, generator=init)
        if bias is not None:
            block.expert_bias.copy_(torch.tensor(bias))
    return block


def test_llada_moe_routing_softmax_topk_without_renormalisation():
    x = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))  # softmax -> [0.1, 0.2, 0.3, 0.4]
    block = _router(None)
    weights, experts = block.route(x)
    assert experts.tolist() == [[3, 2]]
    assert torch.allclose(weights, torch.tensor([[0.4, 0.3]]), atol=1e-6)  # sums to 0.7: no renorm
    with torch.no_grad():
        want = 0.4 * block.experts[3](x) + 0.3 * block.experts[2](x)
        assert torch.allclose(block(x[None]), want[None], atol=1e-6)


def test_llada_moe_expert_bias_changes_choice_and_weights():
    x = torch.log(torch.tensor([[1.0, 2.0, 3.0, 4.0]]))
    weights, experts = _router([0.5, 0.0, 0.0, 0.0]).route(x)  # biased scores [0.6, 0.2, 0.3, 0.4]
    assert experts.tolist() == [[0, 3]]
    assert torch.allclose(weights, torch.tensor([[0.6, 0.4]]), atol=1e-6)  # the bias is in the weight too


def test_llada_logits_cover_the_padded_embedding():
    model = make_model("llada", vocab_size=2000, embedding_size=2048)
    ids, pos = inputs(length=5)
    ids = ids % 2000
    with torch.no_grad():
        out = model(ids, pos)
    assert out.shape == (2, 5, 2048)  # not cut to vocab_size, as in the original
    assert model.state_dict()["model.transformer.wte.weight"].shape == (2048, 128)


def test_llada_weight_tying_projects_with_wte():
    model = make_model("llada", weight_tying=True)
    assert "model.transformer.ff_out.weight" not in model.state_dict()
    ids, pos = inputs(length=5)
    captured = {}
    model.model.transformer["ln_f"].register_forward_hook(lambda m, i, o: captured.setdefault("h", o))
    with torch.no_grad():
        out = model(ids, pos)
    want = captured["h"] @ model.model.transformer["wte"].weight.T
    assert torch.allclose(out, want, atol=1e-6)


@pytest.mark.parametrize("family", ["llada_moe", "dream"])
def test_tied_lm_head_loads_from_embeddings_only(family, tmp_path: Path):
    model = make_model(family, tie_word_embeddings=True)
    state = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(_with_mask_id(model.config.to_dict())))
    loaded = load_reference(tmp_path).model
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    ids, pos = inputs(length=5)
    with torch.no_grad():
        assert torch.equal(model(ids, pos), loaded(ids, pos))


@pytest.mark.parametrize("family", FAMILIES)
def test_rope_frequencies_stay_float32_when_the_model_is_cast(family):
    from dllm_backend.core.reference.layers import rope_cos_sin

    model = make_model(family)
    _, pos = inputs(length=6)
    # Dream builds on the shared Qwen tree, which calls `rope_cos_sin` directly
    rotary = getattr(model, "rotary", None)
    tables = rotary.cos_sin if rotary is not None else (lambda p: rope_cos_sin(p, 32, model.config.rope_theta))
    before = tables(pos)
    model.to(torch.bfloat16)
    after = tables(pos)
    assert all(a.dtype == torch.float32 and torch.equal(a, b) for a, b in zip(after, before))


@pytest.mark.parametrize(
    ("family", "override", "message"),
    [
        ("llada", {"block_type": "sequential"}, "block_type='sequential'"),
        ("llada", {"activation_type": "swiglu"}, "'swiglu'"),
        ("dream", {"use_sliding_window": True}, "use_sliding_window"),
        ("llada_moe", {"rope_scaling": {"rope_type": "linear", "factor": 2.0}}, "rope_scaling"),
        ("llada_moe", {"moe_layer_freq": [1]}, "moe_layer_freq"),
    ],
)
def test_unsupported_configs_raise_naming_the_value(family, override, message):
    with pytest.raises(ValueError, match=message):
        SPECS[family][2](make_config(family, **override))


def test_bad_inputs_raise_value_error():
    model = make_model("dream")
    ids, pos = inputs(length=4)
    with pytest.raises(ValueError, match="positions shape"):
        model(ids, pos[:, :3])
    with pytest.raises(ValueError, match=r"\[2, 4, 4\]"):
        model(ids, pos, mask=torch.ones(2, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="needs a cache"):
        model(ids, pos, write="append")
