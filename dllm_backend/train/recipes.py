"""The training recipes (`llada`, `sdar`, `sdar8`, `sdar16`, `ar`): layout, size, chat ending, objective and schedule.

All share one network size and one task mix so their accuracies and speeds compare: the
full-attention dLLM (`LLaDAModelLM`), the block-causal dLLM (`SDARForCausalLM`, blocks of
4, 8 or 16) and an autoregressive twin in the stock `Qwen3ForCausalLM` layout (it uses
SDAR's Qwen3 tokenizer, so it sees token-for-token the same data as the SDAR models).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from ..core.registry import Registry
from .tasks import TaskConfig

# shared network size (0.84M parameters with the 2,048 vocabulary): heads of 32 (vLLM's CPU attention needs head_dim >= 32)
HIDDEN, HEADS, HEAD_DIM, LAYERS, MLP = 96, 3, 32, 4, 256
ROPE_THETA = 10000.0
MAX_LEN = 512


@dataclass(frozen=True)
class Recipe:
    """How one kind of model is built and trained.

    architecture: HF architectures[0] of the written checkpoint.
    tokenizer_arch: whose tiny tokenizer spec (special tokens, chat template) it uses.
    config: keys overriding the family's tiny config (sizes, RoPE).
    objective: `objectives.OBJECTIVES` name.
    end_token: the token the chat template closes an assistant turn with (the answer's last).
    pad_token: fills the canvas after the answer (dLLMs learn to predict it; AR ignores it).
    gen_length: answer region of every full-attention training row (canvas length at eval).
    block_size: block of the block-diffusion objective.
    """

    kind: str
    architecture: str
    tokenizer_arch: str
    config: Mapping[str, Any]
    objective: str
    end_token: str
    pad_token: str
    steps: int
    batch_size: int
    lr: float
    gen_length: int = 24
    block_size: int = 4
    warmup_steps: int = 50
    weight_decay: float = 0.01
    tasks: TaskConfig = field(default_factory=TaskConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        for name in ("steps", "batch_size", "gen_length", "block_size", "warmup_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.gen_length <= self.tasks.max_len:
            raise ValueError(
                f"gen_length {self.gen_length} leaves no room for the end token after "
                f"{self.tasks.max_len} answer tokens"
            )
        trained = self.config.get("block_size", self.block_size)
        if self.objective == "block_diffusion" and trained != self.block_size:
            raise ValueError(f"block_size {self.block_size} differs from the config's block_size {trained}")


RECIPES: Registry[Recipe] = Registry("training recipe")

_QWEN3_SIZE = {
    "hidden_size": HIDDEN, "num_attention_heads": HEADS, "num_key_value_heads": HEADS,
    "head_dim": HEAD_DIM, "num_hidden_layers": LAYERS, "intermediate_size": MLP,
    "rope_theta": ROPE_THETA, "max_position_embeddings": MAX_LEN, "max_window_layers": LAYERS,
}

RECIPES.add("llada", Recipe(
    kind="llada", architecture="LLaDAModelLM", tokenizer_arch="LLaDAModelLM",
    config={"d_model": HIDDEN, "n_heads": HEADS, "n_kv_heads": HEADS, "n_layers": LAYERS,
            "mlp_hidden_size": MLP, "rope_theta": ROPE_THETA, "max_sequence_length": MAX_LEN},
    objective="masked_diffusion", end_token="<|eot_id|>", pad_token="<|endoftext|>",
    # NOTE: the committed weights were trained on an H200 (scripts/gpu_train.py, 128 s); at 32 per
    # batch and lr 2e-3 (3,600 steps, 15 min on 2 cores) the same network reached only 91.8%
    steps=3141, batch_size=256, lr=3e-3,
))


def _sdar(kind: str, block: int, steps: int, batch_size: int = 32, lr: float = 2e-3) -> Recipe:
    """SDAR layout trained with blocks of `block` (config.json's `block_size`, read by the family resolver)."""
    return Recipe(
        kind=kind, architecture="SDARForCausalLM", tokenizer_arch="SDARForCausalLM",
        config={**_QWEN3_SIZE, "block_size": block}, block_size=block,
        objective="block_diffusion", end_token="<|im_end|>", pad_token="<|endoftext|>",
        steps=steps, batch_size=batch_size, lr=lr,
    )


RECIPES.add("sdar", _sdar("sdar", 4, 2200))  # ~0.4 s/step (noisy + clean copy: twice the tokens): 15 min
# wider blocks, as the released families decode (SDAR 8-16, LLaDA2 32): the same network and
# data; the block only changes which positions see each other (GPU runs: scripts/gpu_train.py)
RECIPES.add("sdar8", _sdar("sdar8", 8, 2200))
RECIPES.add("sdar16", _sdar("sdar16", 16, 3068, batch_size=128))  # the committed one: H200, 134 s
RECIPES.add("ar", Recipe(
    kind="ar", architecture="Qwen3ForCausalLM", tokenizer_arch="SDARForCausalLM",
    config=_QWEN3_SIZE,
    objective="autoregressive", end_token="<|im_end|>", pad_token="<|endoftext|>",
    steps=1500, batch_size=32, lr=2e-3,  # the committed checkpoint's (checkpoints/README.md)
))
