"""Config translation of the vLLM model classes: what each one builds from the served config.

Engine-free checks of the functions the models call at construction (no engine start):
LLaDA's Llama view, LLaDA-MoE's config recovery from the `LLaDAConfig` that its "llada"
model_type makes AutoConfig build, LLaDA2's routing / RoPE keys pinned to the original.
"""
from __future__ import annotations

import json

import pytest

pytest.importorskip("vllm")

from dllm_backend.core.configs import register_configs  # noqa: E402
from dllm_backend.core.configs.llada import LLaDAConfig  # noqa: E402
from dllm_backend.core.configs.llada2 import TINY_CONFIG as LLADA2_TINY  # noqa: E402
from dllm_backend.core.configs.llada2 import LLaDA2MoeConfig  # noqa: E402
from dllm_backend.core.configs.llada_moe import TINY_CONFIG as LLADA_MOE_TINY  # noqa: E402
from dllm_backend.core.configs.llada_moe import LLaDAMoEConfig  # noqa: E402
from dllm_backend.core.tiny.checkpoint import tiny_config_dict  # noqa: E402
from dllm_backend.vllm_adapter.models.llada import llama_view  # noqa: E402
from dllm_backend.vllm_adapter.models.llada2 import as_original  # noqa: E402
from dllm_backend.vllm_adapter.models.llada_moe import moe_config  # noqa: E402

pytestmark = pytest.mark.vllm


def _llada(**overrides) -> LLaDAConfig:
    return LLaDAConfig(**{**tiny_config_dict("LLaDAModelLM"), **overrides})


def test_llama_view_of_llada_sizes_and_biases():
    view = llama_view(_llada(
        mlp_hidden_size=None, mlp_ratio=3, n_kv_heads=None, multi_query_attention=True,
        include_qkv_bias=True, embedding_size=2112, rope_theta=1234.0,
    ))
    assert (view.hidden_size, view.intermediate_size, view.num_hidden_layers) == (128, 384, 2)
    assert (view.num_attention_heads, view.num_key_value_heads) == (4, 1)
    assert (view.qkv_bias, view.attention_bias, view.mlp_bias) == (True, False, False)
    assert view.vocab_size == 2112  # the padded embedding table
    assert view.rope_parameters["rope_theta"] == 1234.0
    assert (view.hidden_act, view.max_position_embeddings, view.rms_norm_eps) == ("silu", 2048, 1e-5)


def test_llama_view_include_bias_puts_bias_everywhere():
    view = llama_view(_llada(include_bias=True, include_qkv_bias=False))
    assert (view.qkv_bias, view.attention_bias, view.mlp_bias) == (True, True, True)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"activation_type": "gelu"}, "activation_type='gelu'"),
        ({"block_type": "sequential"}, "block_type='sequential'"),
        ({"alibi": True}, "alibi=True"),
        ({"bias_for_layer_norm": True}, "bias_for_layer_norm=True"),
        ({"bias_for_layer_norm": None, "include_bias": True}, "bias_for_layer_norm=None"),
    ],
)
def test_llama_view_rejects_what_a_llama_block_cannot_compute(overrides, named):
    with pytest.raises(ValueError, match=named):
        llama_view(_llada(**overrides))


def test_moe_config_recovers_llada_moe_from_the_llada_config_autoconfig_builds(tmp_path):
    from transformers import AutoConfig

    register_configs()
    config = {**LLADA_MOE_TINY, "shared_expert_intermediate_size": 96, "moe_layer_freq": [0, 1],
              "partial_rotary_factor": 0.5, "max_position_embeddings": 3000}
    (tmp_path / "config.json").write_text(json.dumps(config))
    served = AutoConfig.from_pretrained(str(tmp_path))
    assert type(served) is LLaDAConfig  # the released model_type "llada" is LLaDA-8B's
    got = moe_config(served)
    assert type(got) is LLaDAMoEConfig
    assert (got.hidden_size, got.num_hidden_layers, got.num_attention_heads, got.num_key_value_heads) == (128, 2, 4, 4)
    assert (got.num_experts, got.num_experts_per_tok, got.expert_intermediate_size) == (8, 2, 64)
    assert (got.dense_intermediate_size, got.shared_expert_intermediate_size, got.moe_layer_freq) == (256, 96, [0, 1])
    assert (got.max_position_embeddings, got.partial_rotary_factor, got.rope_theta) == (3000, 0.5, 50000)
    assert (got.vocab_size, got.tie_word_embeddings, got.qk_layernorm) == (2048, False, True)
    native = LLaDAMoEConfig(**LLADA_MOE_TINY)
    assert moe_config(native) is native


def _llada2(**overrides) -> LLaDA2MoeConfig:
    return LLaDA2MoeConfig(**{**LLADA2_TINY, **overrides})


def test_as_original_pins_what_the_original_computes():
    config = _llada2(
        norm_topk_prob=False, rotary_dim=8, score_function="softmax", moe_router_enable_expert_bias=False,
        router_dtype="bf16", num_shared_experts=None, use_rmsnorm=False,
    )
    as_original(config)
    routing = (config.score_function, config.moe_router_enable_expert_bias, config.norm_topk_prob, config.router_dtype)
    assert routing == ("sigmoid", True, True, "fp32")
    assert (config.rotary_dim, config.num_shared_experts, config.use_rmsnorm) == (16, 0, True)


def test_as_original_renormalises_only_several_experts():
    config = _llada2(num_experts_per_tok=1, norm_topk_prob=True)
    as_original(config)
    assert config.norm_topk_prob is False


@pytest.mark.parametrize("key", ["use_bias", "norm_head"])
def test_as_original_rejects_layouts_vllm_would_build_differently(key):
    with pytest.raises(ValueError, match=f"{key}=True"):
        as_original(_llada2(**{key: True}))
