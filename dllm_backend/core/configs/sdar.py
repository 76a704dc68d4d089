"""Config class of SDAR (`SDARForCausalLM`, model_type `sdar`): Qwen3 keys plus block diffusion keys.

Field names and defaults follow the published SDAR-8B-Chat config.json (JetLM / JetAstra),
whose remote code is `configuration_sdar.SDARConfig`. Keys the SDAR training code reads
(`debug`, `ep_size`, `fuse_cross_entropy`, `micro_forward`, `skip_checkpoint`, `use_deepep`)
are kept so a real config round-trips; inference ignores them.
"""
from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig

from ._shape_checks import require_gqa, require_positive


class SDARConfig(PretrainedConfig):
    model_type = "sdar"
    keys_to_ignore_at_inference = ["past_key_values"]

    vocab_size: int = 151936
    hidden_size: int = 4096
    intermediate_size: int = 12288
    num_hidden_layers: int = 36
    num_attention_heads: int = 32
    num_key_value_heads: int = 8
    head_dim: int = 128
    hidden_act: str = "silu"
    max_position_embeddings: int = 32768
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-6
    use_cache: bool = False
    tie_word_embeddings: bool = False
    rope_theta: float = 1000000.0
    rope_scaling: dict[str, Any] | None = None
    attention_bias: bool = False
    use_sliding_window: bool = False
    sliding_window: int | None = None
    max_window_layers: int = 36
    attention_dropout: float = 0.0
    # block diffusion: the trained block of the block-causal mask, and the [MASK] id
    block_size: int = 4
    mask_token_id: int | None = 151669
    bos_token_id: int | None = 151643
    eos_token_id: int | list[int] | None = 151643
    pad_token_id: int | None = None
    # training-only switches of the SDAR code base
    debug: bool = False
    ep_size: int = 1
    fuse_cross_entropy: bool = True
    micro_forward: bool = False
    skip_checkpoint: bool = False
    use_deepep: bool = False

    def __post_init__(self, **kwargs: Any) -> None:
        if self.num_key_value_heads is None:  # BC of the Qwen configs: None means multi-head attention
            self.num_key_value_heads = self.num_attention_heads
        if self.rope_scaling is not None and "type" in self.rope_scaling:
            self.rope_scaling.setdefault("rope_type", self.rope_scaling["type"])
        require_positive(
            self, "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "block_size",
        )
        require_gqa(self)
        super().__post_init__(**kwargs)


# config.json of the tiny test checkpoint; ids are placeholders the tiny builder overwrites
TINY_CONFIG: dict[str, Any] = {
    "architectures": ["SDARForCausalLM"],
    "auto_map": {
        "AutoConfig": "configuration_sdar.SDARConfig",
        "AutoModel": "modeling_sdar.SDARModel",
        "AutoModelForCausalLM": "modeling_sdar.SDARForCausalLM",
    },
    "model_type": "sdar",
    "attention_bias": False,
    "attention_dropout": 0.0,
    "attn_implementation": "flex_attention",
    "block_size": 4,
    "bos_token_id": 2000,
    "debug": False,
    "eos_token_id": 2000,
    "ep_size": 1,
    "fuse_cross_entropy": True,
    "head_dim": 32,
    "hidden_act": "silu",
    "hidden_size": 128,
    "initializer_range": 0.02,
    "intermediate_size": 256,
    "mask_token_id": 2001,
    "max_position_embeddings": 2048,
    "max_window_layers": 2,
    "micro_forward": False,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 1000000,
    "skip_checkpoint": False,
    "sliding_window": None,
    "tie_word_embeddings": False,
    "torch_dtype": "float32",
    "use_cache": False,
    "use_deepep": False,
    "use_sliding_window": False,
    "vocab_size": 2048,
}
