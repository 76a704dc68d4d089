"""Config class of SDAR-MoE (`SDARMoeForCausalLM`, model_type `sdar_moe`): Qwen3-MoE keys plus SDAR's.

Defaults follow SDAR-30B-A3B-Chat, which keeps the Qwen3-30B-A3B shape (48 layers,
hidden 2048, 32 heads / 4 KV heads of 128, 128 experts of 768, top-8, renormalised).
"""
from __future__ import annotations

from typing import Any

from ._shape_checks import require_positive, require_top_k
from .sdar import TINY_CONFIG as _SDAR_TINY
from .sdar import SDARConfig


class SDARMoeConfig(SDARConfig):
    model_type = "sdar_moe"

    hidden_size: int = 2048
    intermediate_size: int = 6144
    num_hidden_layers: int = 48
    num_attention_heads: int = 32
    num_key_value_heads: int = 4
    max_window_layers: int = 48
    # MoE (Qwen3-MoE semantics): layer i is sparse unless listed in mlp_only_layers, and
    # only every `decoder_sparse_step`-th layer is
    decoder_sparse_step: int = 1
    moe_intermediate_size: int = 768
    num_experts: int = 128
    num_experts_per_tok: int = 8
    norm_topk_prob: bool = True
    output_router_logits: bool = False
    router_aux_loss_coef: float = 0.001
    mlp_only_layers: list[int] | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        self.mlp_only_layers = [] if self.mlp_only_layers is None else list(self.mlp_only_layers)
        require_positive(self, "decoder_sparse_step", "moe_intermediate_size", "num_experts_per_tok")
        if not isinstance(self.num_experts, int) or self.num_experts < 0:
            raise ValueError(f"SDARMoeConfig.num_experts must be a non-negative integer, got {self.num_experts!r}")
        if self.num_experts:
            require_top_k(self)
        super().__post_init__(**kwargs)

    def is_sparse_layer(self, layer: int) -> bool:
        """Whether decoder layer `layer` has a routed MoE block (else a dense MLP)."""
        return (
            layer not in self.mlp_only_layers
            and self.num_experts > 0
            and (layer + 1) % self.decoder_sparse_step == 0
        )


TINY_CONFIG: dict[str, Any] = {
    **_SDAR_TINY,
    "architectures": ["SDARMoeForCausalLM"],
    "auto_map": {
        "AutoConfig": "configuration_sdar_moe.SDARMoeConfig",
        "AutoModel": "modeling_sdar_moe.SDARMoeModel",
        "AutoModelForCausalLM": "modeling_sdar_moe.SDARMoeForCausalLM",
    },
    "model_type": "sdar_moe",
    "decoder_sparse_step": 1,
    "mlp_only_layers": [],
    "moe_intermediate_size": 64,
    "norm_topk_prob": True,
    "num_experts": 8,
    "num_experts_per_tok": 2,
    "output_router_logits": False,
    "router_aux_loss_coef": 0.001,
}
