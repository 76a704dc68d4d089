"""`make_tiny`: a small random-weight checkpoint of one family, in that family's exact HF layout.

Writes config.json (the family's `TINY_CONFIG` with the tiny vocabulary's ids), model.safetensors
(the reference network's tensors under their real names), generation_config.json and a trained
byte-level BPE tokenizer with the family's special tokens and chat template.
"""
from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import Tokenizer
from transformers import GenerationConfig

from ..families import FAMILIES, FamilySpec
from .specs import TOKENIZER_SPECS, TokenizerSpec
from .tokenizer import build_tokenizer, token_ids, write_tokenizer

TINY_ARCHITECTURES: tuple[str, ...] = tuple(FAMILIES.names())
TINY_VOCAB = 2048
_VOCAB_KEYS = ("vocab_size", "embedding_size")  # embedding_size: LLaDA's (OLMo) padded table rows


def make_tiny(architecture: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Writes the tiny checkpoint of `architecture` into `out_dir` (created); returns its path.

    Same architecture and seed -> byte-identical model.safetensors and tokenizer files.
    """
    family = FAMILIES.get(architecture)
    tok_spec = TOKENIZER_SPECS.get(architecture)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(tok_spec, TINY_VOCAB)
    config, model_type = _config(family, tok_spec, tok)
    write_config(config, model_type, out / "config.json")
    if tok_spec.generation_ids is not None:
        gen = {key: token_ids(tok, names) for key, names in tok_spec.generation_ids.items()}
        GenerationConfig(**gen).save_pretrained(str(out))
    max_len = int(getattr(config, family.max_len_key, None) or TINY_VOCAB)
    write_tokenizer(tok, tok_spec, out, max_len)
    _write_weights(family, config, seed, out / "model.safetensors")
    return out


def tiny_config_dict(architecture: str) -> dict[str, Any]:
    """A copy of the family's `TINY_CONFIG` (config.json dict before the tokenizer's ids)."""
    module = FAMILIES.get(architecture).config_class.partition(":")[0]
    return dict(importlib.import_module(module).TINY_CONFIG)


def _config(family: FamilySpec, tok_spec: TokenizerSpec, tok: Tokenizer) -> tuple[Any, str | None]:
    """The family's config object with the tiny vocabulary's size and ids, and TINY_CONFIG's model_type."""
    d = tiny_config_dict(family.architecture)
    for key in _VOCAB_KEYS:
        if key in d:
            d[key] = TINY_VOCAB
    for key, value in d.items():
        if not key.endswith("token_id") or value is None:
            continue
        if key not in tok_spec.config_ids:
            raise ValueError(
                f"{family.architecture} TINY_CONFIG has {key!r}, which no tiny token is named for; "
                f"known id keys: {', '.join(sorted(tok_spec.config_ids))}"
            )
        d[key] = token_ids(tok, tok_spec.config_ids[key])
    return family.load_class("config_class")(**d), d.get("model_type")


def write_config(config: Any, model_type: str | None, path: Path) -> None:
    """config.json as `save_pretrained` writes it, keeping the checkpoint's own model_type.

    NOTE: LLaDA-MoE's real config.json says "llada" while its class registers as "lladamoe"
    (see configs/llada_moe.py); the file must carry the real string.
    """
    d = json.loads(config.to_json_string(use_diff=True))
    if model_type is not None:
        d["model_type"] = model_type
    path.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")


def _write_weights(family: FamilySpec, config: Any, seed: int, path: Path) -> None:
    model = family.load_class("reference_model")(config)
    model.init_weights(torch.Generator().manual_seed(seed))
    tied = bool(getattr(config, "tie_word_embeddings", False) or getattr(config, "weight_tying", False))
    skip = set(model.tied_weights) if tied else set()
    # NOTE: clone so no two saved tensors share storage (safetensors refuses shared memory).
    tensors = {
        name: t.detach().clone().contiguous()
        for name, t in model.state_dict().items() if name not in skip
    }
    save_file(tensors, str(path), metadata={"format": "pt"})
