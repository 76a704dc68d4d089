"""Config class of Fast-dLLM v2 (`Fast_dLLM_QwenForCausalLM`, model_type `Fast_dLLM_Qwen`): Qwen2 keys + `bd_size`.

Defaults follow Fast_dLLM_v2_7B (Qwen2.5-7B-Instruct shape: 28 layers, hidden 3584, 28 heads /
4 KV heads, untied head); the 1.5B checkpoint ties its embeddings (`tie_word_embeddings`).
`bd_size` is the block of the block-causal mask the model was trained with.
"""
from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

from ._shape_checks import require_gqa, require_positive

_LAYER_TYPES = ("full_attention", "sliding_attention")


class Fast_dLLM_QwenConfig(PretrainedConfig):  # noqa: N801 - the checkpoint's own class name
    model_type = "Fast_dLLM_Qwen"
    keys_to_ignore_at_inference = ["past_key_values"]

    vocab_size: int = 151936
    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int = 4
    hidden_act: str = "silu"
    max_position_embeddings: int = 32768
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    use_cache: bool = True
    tie_word_embeddings: bool = False
    rope_theta: float = 1000000.0
    rope_scaling: dict[str, Any] | None = None
    use_sliding_window: bool = False
    sliding_window: int | None = None
    max_window_layers: int = 28
    layer_types: list[str] | None = None
    attention_dropout: float = 0.0
    bd_size: int = 32
    bos_token_id: int | None = 151643
    eos_token_id: int | list[int] | None = 151645
    pad_token_id: int | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        if self.num_key_value_heads is None:  # BC of the Qwen configs: None means multi-head attention
            self.num_key_value_heads = self.num_attention_heads
        if not self.use_sliding_window:
            self.sliding_window = None
        require_positive(
            self, "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "bd_size",
        )
        require_gqa(self)
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size {self.hidden_size} is not a multiple of num_attention_heads {self.num_attention_heads}"
            )
        if self.layer_types is None:
            self.layer_types = [
                "sliding_attention" if self.sliding_window is not None and i >= self.max_window_layers
                else "full_attention"
                for i in range(self.num_hidden_layers)
            ]
        bad = [t for t in self.layer_types if t not in _LAYER_TYPES]
        if bad or len(self.layer_types) != self.num_hidden_layers:
            raise ValueError(
                f"layer_types must list one of {_LAYER_TYPES} per layer ({self.num_hidden_layers}), "
                f"got {self.layer_types!r}"
            )
        super().__post_init__(**kwargs)


TINY_CONFIG: dict[str, Any] = {
    "architectures": ["Fast_dLLM_QwenForCausalLM"],
    "auto_map": {
        "AutoConfig": "configuration.Fast_dLLM_QwenConfig",
        "AutoModel": "modeling.Fast_dLLM_QwenModel",
        "AutoModelForCausalLM": "modeling.Fast_dLLM_QwenForCausalLM",
    },
    "model_type": "Fast_dLLM_Qwen",
    "attention_dropout": 0.0,
    "bd_size": 32,
    "bos_token_id": 2000,
    "eos_token_id": 2001,
    "hidden_act": "silu",
    "hidden_size": 128,
    "initializer_range": 0.02,
    "intermediate_size": 256,
    "layer_types": ["full_attention", "full_attention"],
    "max_position_embeddings": 2048,
    "max_window_layers": 2,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000.0,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "torch_dtype": "float32",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 2048,
}
