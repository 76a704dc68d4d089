"""Config class of LLaDA2.x (`LLaDA2MoeModelLM`, model_type `llada2_moe`), the BailingMoeV2 layout.

Defaults follow LLaDA2.0-mini (inclusionAI): 20 layers, hidden 2048, 16 heads / 4 KV heads of
128, half-rotary RoPE (theta 600000), layer 0 dense, then 256 routed experts of 512 (top-8 in
4 of 8 groups, sigmoid scores, scaling 2.5) plus one shared expert.

NOTE: the original modeling code always routes with sigmoid scores, renormalises the chosen
weights when top-k > 1 and rotates `int(head_dim * partial_rotary_factor)` channels; the keys
`score_function`, `norm_topk_prob`, `rotary_dim`, `router_dtype`, `norm_softmax` and
`moe_router_enable_expert_bias` are descriptive only and are kept so real configs round-trip.
LLaDA2 has no block-size key: its block (32) is an argument of generate().
"""
from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

from ._shape_checks import require_gqa, require_positive, require_top_k


class LLaDA2MoeConfig(PretrainedConfig):
    model_type = "llada2_moe"

    vocab_size: int = 157184
    hidden_size: int = 2048
    intermediate_size: int = 5120
    num_hidden_layers: int = 20
    num_attention_heads: int = 16
    num_key_value_heads: int = 4
    head_dim: int | None = 128
    hidden_act: str = "silu"
    use_qkv_bias: bool = False
    use_qk_norm: bool = True
    use_bias: bool = False
    use_rmsnorm: bool = True
    rms_norm_eps: float = 1e-6
    norm_head: bool = False
    tie_word_embeddings: bool = False
    embedding_dropout: float = 0.0
    attention_dropout: float = 0.0
    output_dropout: float = 0.0
    initializer_range: float = 0.02
    max_position_embeddings: int = 16384
    rope_theta: float = 600000.0
    rope_scaling: dict[str, Any] | None = None
    partial_rotary_factor: float = 0.5
    rotary_dim: int | None = 64
    use_cache: bool = False
    use_sliding_window: bool = False
    sliding_window: int | None = 4096
    max_window_layers: int = 28
    using_split_qkv_in_self_attention: bool = False
    pad_token_id: int | None = 156892
    # MoE
    num_experts: int | None = 256
    num_shared_experts: int | None = 1
    num_experts_per_tok: int = 8
    n_group: int = 8
    topk_group: int = 4
    routed_scaling_factor: float = 2.5
    moe_intermediate_size: int = 512
    first_k_dense_replace: int = 1
    output_router_logits: bool = False
    score_function: str = "sigmoid"
    norm_topk_prob: bool = True
    norm_softmax: bool = False
    router_dtype: str = "fp32"
    moe_router_enable_expert_bias: bool = True

    def __post_init__(self, **kwargs: Any) -> None:
        if not self.head_dim:  # the original falls back to hidden / heads
            self.head_dim = self.hidden_size // self.num_attention_heads
        require_positive(
            self, "vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim",
        )
        require_gqa(self)
        if not all(self.is_sparse_layer(i) for i in range(self.num_hidden_layers)):
            require_positive(self, "intermediate_size")  # only dense layers use it
        if not 0.0 < float(self.partial_rotary_factor) <= 1.0:
            raise ValueError(f"partial_rotary_factor must be in (0, 1], got {self.partial_rotary_factor!r}")
        if self.num_experts is not None:
            self._check_routing()
        super().__post_init__(**kwargs)

    def _check_routing(self) -> None:
        require_positive(self, "num_experts", "num_experts_per_tok", "n_group", "topk_group", "moe_intermediate_size")
        require_top_k(self)
        if self.num_experts % self.n_group:
            raise ValueError(f"num_experts {self.num_experts} is not a multiple of n_group {self.n_group}")
        if self.num_experts // self.n_group < 2:
            # a group's score is the sum of its best two experts
            raise ValueError(f"n_group {self.n_group} leaves fewer than 2 experts per group of {self.num_experts}")
        if self.topk_group > self.n_group:
            raise ValueError(f"topk_group {self.topk_group} exceeds n_group {self.n_group}")
        kept = self.topk_group * (self.num_experts // self.n_group)
        if self.num_experts_per_tok > kept:
            raise ValueError(
                f"num_experts_per_tok {self.num_experts_per_tok} exceeds the {kept} experts of the "
                f"{self.topk_group} kept groups"
            )

    def is_sparse_layer(self, layer: int) -> bool:
        """Whether decoder layer `layer` has the routed MoE block (the first layers are dense)."""
        return self.num_experts is not None and layer >= self.first_k_dense_replace


TINY_CONFIG: dict[str, Any] = {
    "architectures": ["LLaDA2MoeModelLM"],
    "auto_map": {
        "AutoConfig": "configuration_llada2_moe.LLaDA2MoeConfig",
        "AutoModel": "modeling_llada2_moe.LLaDA2MoeModel",
        "AutoModelForCausalLM": "modeling_llada2_moe.LLaDA2MoeModelLM",
    },
    "model_type": "llada2_moe",
    "attention_dropout": 0.0,
    "embedding_dropout": 0.0,
    "first_k_dense_replace": 1,
    "head_dim": 32,
    "hidden_act": "silu",
    "hidden_size": 128,
    "initializer_range": 0.02,
    "intermediate_size": 256,
    "max_position_embeddings": 2048,
    "max_window_layers": 2,
    "moe_intermediate_size": 64,
    "moe_router_enable_expert_bias": True,
    "n_group": 4,
    "norm_head": False,
    "norm_softmax": False,
    "norm_topk_prob": True,
    "num_attention_heads": 4,
    "num_experts": 8,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "num_shared_experts": 1,
    "output_dropout": 0.0,
    "output_router_logits": False,
    "pad_token_id": 2000,
    "partial_rotary_factor": 0.5,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 600000,
    "rotary_dim": 16,
    "routed_scaling_factor": 2.5,
    "router_dtype": "fp32",
    "score_function": "sigmoid",
    "tie_word_embeddings": False,
    "topk_group": 2,
    "torch_dtype": "float32",
    "use_bias": False,
    "use_cache": False,
    "use_qk_norm": True,
    "use_qkv_bias": False,
    "use_rmsnorm": True,
    "use_sliding_window": False,
    "using_split_qkv_in_self_attention": False,
    "vocab_size": 2048,
}
