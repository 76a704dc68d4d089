"""Loads a checkpoint directory (HF layout, safetensors) into its reference network."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..configs import register_configs
from ..families import ResolvedFamily, resolve_dir
from .base import ReferenceModel


@dataclass
class LoadedModel:
    model: ReferenceModel
    family: ResolvedFamily
    model_dir: Path


def _checkpoint_files(d: Path) -> list[Path]:
    index = d / "model.safetensors.index.json"
    if index.is_file():
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        return [d / s for s in shards]
    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise ValueError(f"no safetensors weights in {str(d)!r}")
    return files


def load_state_dict(d: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = {}
    for f in _checkpoint_files(d):
        state.update(load_file(str(f)))
    return state


def load_reference(
    model_dir: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> LoadedModel:
    """Builds the family's reference network from config.json and loads its weights onto `device`.

    Every checkpoint tensor must match a parameter by name and shape and vice versa,
    except tensors the network declares tied.
    """
    d = Path(model_dir)
    family = resolve_dir(d)
    register_configs()
    config = family.spec.load_class("config_class").from_pretrained(str(d))
    model: ReferenceModel = family.spec.load_class("reference_model")(config)
    state = load_state_dict(d)
    own = model.state_dict()
    unexpected = sorted(set(state) - set(own))
    missing = sorted(set(own) - set(state) - set(_tied_present(model, state)))
    if unexpected or missing:
        raise ValueError(
            f"checkpoint {str(d)!r} does not match {family.spec.architecture}: "
            f"unexpected tensors {unexpected[:5]}, missing tensors {missing[:5]}"
        )
    for name, target in _tied_present(model, state).items():
        state[name] = state[target]
    model.load_state_dict(state, strict=True)
    model.to(device=device, dtype=dtype).eval()
    return LoadedModel(model=model, family=family, model_dir=d)


def _tied_present(model: ReferenceModel, state: dict[str, torch.Tensor]) -> dict[str, str]:
    """Tied names whose source tensor is in the checkpoint (name -> source)."""
    tie = bool(getattr(model.config, "tie_word_embeddings", False) or getattr(model.config, "weight_tying", False))
    if not tie:
        return {}
    return {n: src for n, src in model.tied_weights.items() if n not in state and src in state}
