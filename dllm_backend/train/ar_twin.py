"""The autoregressive twin (stock `Qwen3ForCausalLM` layout): load it into the Qwen3 reference tree, decode greedily.

The core's loader only knows dLLM families, so the twin has its own: the Qwen3 config.json
is read into the reference network SDAR shares (same module tree, same names), and decoding
is plain greedy next-token with a KV cache, reported as a `GenerationResult` (one token per
step, one forward per token) so the benchmark scores it like the dLLMs.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.reference.generators import GenerationResult
from ..core.reference.loading import load_state_dict
from ..core.reference.models.sdar import SDARForCausalLM
from .checkpoint import AR_ARCHITECTURE, ar_network_config


@dataclass
class LoadedAR:
    model: SDARForCausalLM
    eos_ids: tuple[int, ...]
    model_dir: Path


def _ids(value) -> tuple[int, ...]:
    if value is None:
        return ()
    return (int(value),) if isinstance(value, int) else tuple(int(v) for v in value)


def load_ar_twin(
    model_dir: str | Path, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> LoadedAR:
    d = Path(model_dir)
    config = json.loads((d / "config.json").read_text())
    archs = config.get("architectures") or []
    if archs != [AR_ARCHITECTURE]:
        raise ValueError(f"{str(d)!r} is not an AR twin: architectures {archs!r}, expected [{AR_ARCHITECTURE!r}]")
    model = SDARForCausalLM(ar_network_config(config))
    model.load_state_dict(load_state_dict(d), strict=True)
    model.to(device=device, dtype=dtype).eval()
    gen_path = d / "generation_config.json"
    gen = json.loads(gen_path.read_text()) if gen_path.is_file() else {}
    eos = tuple(dict.fromkeys(_ids(gen.get("eos_token_id")) + _ids(config.get("eos_token_id"))))
    return LoadedAR(model=model, eos_ids=eos, model_dir=d)


@torch.inference_mode()
def greedy_generate(loaded: LoadedAR, prompt_ids: tuple[int, ...], max_tokens: int) -> GenerationResult:
    """Greedy decoding until a stop id (kept) or `max_tokens`."""
    if not prompt_ids:
        raise ValueError("the prompt is empty: at least one prompt token is needed")
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be a positive integer, got {max_tokens!r}")
    model = loaded.model
    dev = next(model.parameters()).device
    cache = model.new_cache()
    n = len(prompt_ids)
    ids = torch.tensor([prompt_ids], dtype=torch.long, device=dev)  # [1, P]
    causal = torch.ones(n, n, dtype=torch.bool, device=dev).tril()[None]  # [1, P, P]
    logits = model(ids, torch.arange(n, device=dev)[None], causal, cache, "append")
    out: list[int] = []
    stops = set(loaded.eos_ids)
    while True:
        tok = int(logits[0, -1].argmax())
        out.append(tok)
        if tok in stops or len(out) == max_tokens:
            break
        # NOTE: mask None is causal here: the cache holds only earlier positions
        pos = torch.tensor([[n + len(out) - 1]], device=dev)
        logits = model(torch.tensor([[tok]], device=dev), pos, None, cache, "append")
    return GenerationResult(
        token_ids=out, finish_reason="stop" if out[-1] in stops else "length",
        nfe=len(out), steps=len(out), tokens_per_step=[1] * len(out),
    )
