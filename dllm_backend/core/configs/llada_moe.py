"""`LLaDAMoEConfig`: the OLMoE-style config of LLaDA-MoE-7B-A1B and its tiny test twin.

NOTE: the released config.json says `"model_type": "llada"` (the same string as LLaDA-8B;
its remote class is also called `LLaDAConfig`), so AutoConfig alone cannot tell the two
families apart. This class registers under "lladamoe" (the name the community dllm code
uses); loading goes by `architectures` ("LLaDAMoEModelLM"), which is unambiguous.
`TINY_CONFIG` keeps the real "llada" string.

Keys follow the remote configuration_lladamoe.py; defaults are the 7B-A1B values where known.
"""
from __future__ import annotations

import inspect
from typing import Any

from transformers import PretrainedConfig


class LLaDAMoEConfig(PretrainedConfig):
    model_type = "lladamoe"
    keys_to_ignore_at_inference = ["past_key_values"]
    # NOTE: a plain attribute shadowing the base class's `rope_scaling` property, which would
    # rewrite the value into `rope_parameters` (a key the released config.json does not have).
    rope_scaling = None

    def __init__(
        self,
        vocab_size: int = 157184,
        hidden_size: int = 2048,
        dense_intermediate_size: int = 8192,
        expert_intermediate_size: int = 1024,
        shared_expert_intermediate_size: int | None = None,
        num_hidden_layers: int = 16,
        num_attention_heads: int = 16,
        num_key_value_heads: int | None = 16,
        hidden_act: str = "silu",
        max_position_embeddings: int = 8192,
        initializer_range: float = 0.02,
        rms_norm_eps: float = 1e-5,
        use_cache: bool = False,
        pad_token_id: int | None = 156892,
        bos_token_id: int | None = None,
        eos_token_id: int | None = 156892,
        tie_word_embeddings: bool = False,
        rope_theta: float = 50000.0,
        partial_rotary_factor: float = 1.0,
        rope_scaling: dict | None = None,
        attention_bias: bool = False,
        attention_dropout: float = 0.0,
        clip_qkv: float | None = None,
        num_experts_per_tok: int = 8,
        num_experts: int = 64,
        output_router_logits: bool = False,
        router_aux_loss_coef: float = 0.01,
        norm_topk_prob: bool | None = False,
        qk_layernorm: bool = True,
        moe_layer_freq: list[int] | None = None,
        moe_router_enable_expert_bias: bool | None = False,
        moe_router_score_function: str | None = "softmax",
        routed_scaling_factor: float = 1.0,
        router_num_group: int | None = None,
        router_topk_group: int | None = None,
        **kwargs: Any,
    ) -> None:
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.dense_intermediate_size = dense_intermediate_size
        self.expert_intermediate_size = expert_intermediate_size
        self.shared_expert_intermediate_size = shared_expert_intermediate_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.num_key_value_heads = num_attention_heads if num_key_value_heads is None else num_key_value_heads
        self.hidden_act = hidden_act
        self.max_position_embeddings = max_position_embeddings
        self.initializer_range = initializer_range
        self.rms_norm_eps = rms_norm_eps
        self.use_cache = use_cache
        self.pad_token_id = pad_token_id
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.tie_word_embeddings = tie_word_embeddings
        self.rope_theta = rope_theta
        self.partial_rotary_factor = partial_rotary_factor
        self.rope_scaling = rope_scaling
        self.attention_bias = attention_bias
        self.attention_dropout = attention_dropout
        self.clip_qkv = clip_qkv
        self.num_experts_per_tok = num_experts_per_tok
        self.num_experts = num_experts
        self.output_router_logits = output_router_logits
        self.router_aux_loss_coef = router_aux_loss_coef
        self.norm_topk_prob = norm_topk_prob
        self.qk_layernorm = qk_layernorm
        self.moe_layer_freq = [1] * num_hidden_layers if moe_layer_freq is None else list(moe_layer_freq)
        self.moe_router_enable_expert_bias = moe_router_enable_expert_bias
        self.moe_router_score_function = moe_router_score_function
        self.routed_scaling_factor = routed_scaling_factor
        self.router_num_group = router_num_group
        self.router_topk_group = router_topk_group
        kwargs.setdefault("architectures", ["LLaDAMoEModelLM"])
        super().__init__(**kwargs)


# The config.json of the tiny test checkpoint (keys of the released LLaDA-MoE config.json).
# Ids (eos / pad) and vocab_size are placeholders the tiny builder overwrites.
def as_moe_config(config: Any, skip: tuple[str, ...] = ()) -> "LLaDAMoEConfig":
    """A served config as `LLaDAMoEConfig`, whichever config class loaded it.

    NOTE: the released config.json says model_type "llada" (LLaDA-8B's string), so AutoConfig
    and the engines build `LLaDAConfig` for it; every LLaDA-MoE key is still on that object, as
    an extra attribute or through LLaDAConfig's `attribute_map` aliases (hidden_size -> d_model).
    `skip`: keys the caller takes from elsewhere (e.g. an engine's standardised RoPE).
    """
    if isinstance(config, LLaDAMoEConfig):
        return config
    keys = [k for k in inspect.signature(LLaDAMoEConfig.__init__).parameters if k not in ("self", "kwargs", *skip)]
    return LLaDAMoEConfig(**{k: getattr(config, k) for k in keys if hasattr(config, k)})


TINY_CONFIG: dict[str, Any] = {
    "architectures": ["LLaDAMoEModelLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "auto_map": {
        "AutoConfig": "configuration_lladamoe.LLaDAConfig",
        "AutoModel": "modeling_lladamoe.LLaDAMoEModelLM",
        "AutoModelForCausalLM": "modeling_lladamoe.LLaDAMoEModelLM",
    },
    "bos_token_id": None,
    "clip_qkv": None,
    "dense_intermediate_size": 256,
    "eos_token_id": 2046,
    "expert_intermediate_size": 64,
    "hidden_act": "silu",
    "hidden_size": 128,
    "initializer_range": 0.02,
    "max_position_embeddings": 2048,
    "model_type": "llada",
    "moe_layer_freq": [1, 1],
    "moe_router_enable_expert_bias": False,
    "moe_router_score_function": "softmax",
    "norm_topk_prob": False,
    "num_attention_heads": 4,
    "num_experts": 8,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 2,
    "num_key_value_heads": 4,
    "output_router_logits": False,
    "pad_token_id": 2046,
    "partial_rotary_factor": 1,
    "qk_layernorm": True,
    "rms_norm_eps": 1e-05,
    "rope_scaling": None,
    "rope_theta": 50000,
    "routed_scaling_factor": 1,
    "router_aux_loss_coef": 0.01,
    "router_num_group": None,
    "router_topk_group": None,
    "shared_expert_intermediate_size": None,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.46.3",
    "use_cache": False,
    "vocab_size": 2048,
}
