"""Writes a trained checkpoint in its exact HF layout, through the same pieces `make_tiny` uses.

config.json (the family's tiny config with the recipe's sizes, or a stock Qwen3 config for the
AR twin), generation_config.json, the tiny tokenizer files, and model.safetensors holding the
reference network's tensors under their real names.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import GenerationConfig, PreTrainedTokenizerFast

from ..core.configs.sdar import SDARConfig
from ..core.families import FAMILIES
from ..core.reference.base import ReferenceModel
from ..core.reference.models.sdar import SDARForCausalLM
from ..core.tiny import TINY_VOCAB
from ..core.tiny.checkpoint import write_config, tiny_config_dict
from ..core.tiny.specs import TOKENIZER_SPECS
from ..core.tiny.tokenizer import build_tokenizer, token_ids, write_tokenizer
from .recipes import MAX_LEN, Recipe

AR_ARCHITECTURE = "Qwen3ForCausalLM"


def checkpoint_architecture(model_dir: str | Path) -> str:
    """`architectures[0]` of a checkpoint directory's config.json ("" when it names none)."""
    config = Path(model_dir) / "config.json"
    if not config.is_file():
        raise ValueError(f"{str(model_dir)!r} is not a checkpoint directory: no config.json")
    return (json.loads(config.read_text()).get("architectures") or [""])[0]
_VOCAB_KEYS = ("vocab_size", "embedding_size")


def write_config_and_tokenizer(recipe: Recipe, out_dir: Path) -> tuple[Any, PreTrainedTokenizerFast]:
    """Writes everything but the weights; returns (the network's config, the tokenizer)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    spec = TOKENIZER_SPECS.get(recipe.tokenizer_arch)
    tok = build_tokenizer(spec, TINY_VOCAB)
    if recipe.architecture == AR_ARCHITECTURE:
        config = _write_qwen3_config(recipe, tok, out_dir)
    else:
        config = _write_dllm_config(recipe, spec, tok, out_dir)
    if spec.generation_ids is not None:
        gen = {key: token_ids(tok, names) for key, names in spec.generation_ids.items()}
        GenerationConfig(**gen).save_pretrained(str(out_dir))
    write_tokenizer(tok, spec, out_dir, MAX_LEN)
    return config, PreTrainedTokenizerFast.from_pretrained(str(out_dir))


def _write_dllm_config(recipe: Recipe, spec, tok, out_dir: Path) -> Any:
    family = FAMILIES.get(recipe.architecture)
    d = tiny_config_dict(recipe.architecture)
    d.update(recipe.config)
    for key in _VOCAB_KEYS:
        if key in d:
            d[key] = TINY_VOCAB
    for key, value in list(d.items()):
        if key.endswith("token_id") and value is not None:
            d[key] = token_ids(tok, spec.config_ids[key])
    config = family.load_class("config_class")(**d)
    write_config(config, d.get("model_type"), out_dir / "config.json")
    return config


def _qwen3_ids(tok) -> dict[str, int]:
    # Qwen3 instruct checkpoints: BOS/pad <|endoftext|>, EOS <|im_end|>
    return {
        "bos_token_id": tok.token_to_id("<|endoftext|>"),
        "eos_token_id": tok.token_to_id("<|im_end|>"),
        "pad_token_id": tok.token_to_id("<|endoftext|>"),
    }


def _write_qwen3_config(recipe: Recipe, tok, out_dir: Path) -> SDARConfig:
    """config.json of stock transformers / vLLM Qwen3; the network is built from the same sizes."""
    from transformers import Qwen3Config

    size = dict(recipe.config)
    theta = size.pop("rope_theta")
    ids = _qwen3_ids(tok)
    hf = Qwen3Config(
        vocab_size=TINY_VOCAB, tie_word_embeddings=False, use_cache=True,
        rope_parameters={"rope_type": "default", "rope_theta": theta},
        architectures=[AR_ARCHITECTURE], dtype="float32", **size, **ids,
    )
    d = json.loads(hf.to_json_string(use_diff=False))
    (out_dir / "config.json").write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")
    return ar_network_config(d)


def ar_network_config(d: dict[str, Any]) -> SDARConfig:
    """The reference network's config for a Qwen3 config.json dict (the Qwen3 tree is SDAR's)."""
    rope = d.get("rope_parameters") or {}
    if rope.get("rope_type", "default") != "default":
        raise ValueError(f"AR twin supports default RoPE only, got rope_parameters {rope!r}")
    keys = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "head_dim", "rms_norm_eps", "max_position_embeddings",
            "tie_word_embeddings", "attention_bias", "pad_token_id", "bos_token_id", "eos_token_id")
    return SDARConfig(rope_theta=float(rope.get("rope_theta", d.get("rope_theta", 10000.0))),
                      **{k: d[k] for k in keys if k in d})


def build_network(recipe: Recipe, config: Any, seed: int) -> ReferenceModel:
    """The recipe's reference network, initialised as make_tiny does (one seeded generator)."""
    if recipe.architecture == AR_ARCHITECTURE:
        model: ReferenceModel = SDARForCausalLM(config)
    else:
        model = FAMILIES.get(recipe.architecture).load_class("reference_model")(config)
    model.init_weights(torch.Generator().manual_seed(seed))
    return model


def save_weights(model: ReferenceModel, path: Path, dtype: torch.dtype = torch.float32) -> None:
    tied = bool(getattr(model.config, "tie_word_embeddings", False) or getattr(model.config, "weight_tying", False))
    skip = set(model.tied_weights) if tied else set()
    # NOTE: clone so no two saved tensors share storage (safetensors refuses shared memory)
    tensors = {
        name: t.detach().to("cpu", dtype).clone().contiguous()
        for name, t in model.state_dict().items() if name not in skip
    }
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    tmp.replace(path)  # a run stopped mid-write leaves the previous weights, never half of them
