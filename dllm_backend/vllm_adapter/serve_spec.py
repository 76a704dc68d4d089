"""What the adapter needs to know about the served checkpoint: ids, default block, layout, cache mode.

Engine-free (no vLLM import): built from the checkpoint directory with the core's
`families.resolve_dir`, so the engine and the reference read the same ids. The block
layout (`layouts.LAYOUTS`) is the family's reference generator's name.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..core.families import ResolvedFamily, resolve_dir
from ..core.reference.generators import CACHE_MODES
from .layouts import LAYOUTS, Layout

# `--additional-config` key of the server's default cache mode (full-attention families)
CACHE_MODE_KEY = "dllm_cache_mode"


@dataclass(frozen=True)
class ServeSpec:
    """One served checkpoint. `block` is the family's default denoising block (the trained
    block for block-causal families; 0 = the whole canvas for Dream); `cache_mode` is the
    server's default for requests that do not set one."""

    family: ResolvedFamily
    block: int
    cache_mode: str = "exact"

    @classmethod
    def from_model_dir(
        cls, model_dir: str | Path, additional_config: Mapping[str, Any] | None = None
    ) -> "ServeSpec":
        family = resolve_dir(model_dir)
        LAYOUTS.get(family.spec.generator)  # a family without a layout is refused here
        settings = additional_config if isinstance(additional_config, Mapping) else {}
        mode = settings.get(CACHE_MODE_KEY, "exact")
        if mode not in CACHE_MODES:
            raise ValueError(f"{CACHE_MODE_KEY} {mode!r} is unknown; valid choices: {', '.join(CACHE_MODES)}")
        if family.spec.attention == "block_causal":
            mode = "exact"  # block-causal KV is exact; the knob is for full-attention families
        return cls(family=family, block=family.block_size, cache_mode=mode)

    @classmethod
    def from_vllm_config(cls, vllm_config: Any) -> "ServeSpec":
        return cls.from_model_dir(vllm_config.model_config.model, vllm_config.additional_config)

    @property
    def layout(self) -> Layout:
        return LAYOUTS.get(self.family.spec.generator)

    @property
    def mask_id(self) -> int:
        return self.family.mask_id

    @property
    def eos_ids(self) -> tuple[int, ...]:
        return self.family.eos_ids
