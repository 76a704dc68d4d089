"""What the adapter needs to know about the served checkpoint: ids, layout, server-wide decoding defaults.

Engine-free (no vLLM import): built from the checkpoint directory with the core's
`families.resolve_dir`, so the engine and the reference read the same ids. The block
layout (`layouts.LAYOUTS`) is the family's reference generator's name; the server-wide
defaults (`--additional-config '{"dllm": {...}}'`, e.g. `"cache_mode": "dual"`) are
`decode_params.ServedDecoding`, the same object the front end validates requests with.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core.families import ResolvedFamily, resolve_dir
from .decode_params import ServedDecoding
from .layouts import LAYOUTS, Layout


@dataclass(frozen=True)
class ServeSpec:
    """One served checkpoint and its server-wide decoding defaults."""

    family: ResolvedFamily
    served: ServedDecoding

    @classmethod
    def from_model_dir(
        cls, model_dir: str | Path, additional_config: Any = None, max_model_len: int | None = None
    ) -> "ServeSpec":
        family = resolve_dir(model_dir)
        LAYOUTS.get(family.spec.generator)  # a family without a layout is refused here
        served = ServedDecoding.from_additional_config(family, additional_config, max_model_len)
        return cls(family=family, served=served)

    @classmethod
    def from_vllm_config(cls, vllm_config: Any) -> "ServeSpec":
        model_config = vllm_config.model_config
        return cls.from_model_dir(model_config.model, vllm_config.additional_config, model_config.max_model_len)

    @property
    def layout(self) -> Layout:
        return LAYOUTS.get(self.family.spec.generator)

    @property
    def block(self) -> int:
        """The family's default block (block-causal: the trained one; 0: Dream's whole canvas)."""
        return self.family.block_size

    def check_token_budget(self, max_num_batched_tokens: int | None, max_model_len: int) -> None:
        """A denoising query is scheduled all-or-nothing: the budget must hold the largest one
        (block-causal: a block; full attention: up to the whole canvas, <= max_model_len)."""
        query = self.block if self.family.spec.attention == "block_causal" else max_model_len
        if max_num_batched_tokens is not None and max_num_batched_tokens < query:
            raise ValueError(
                f"max_num_batched_tokens {max_num_batched_tokens} is smaller than the largest "
                f"denoising query ({query} tokens) of {self.family.spec.architecture}: a query is "
                f"scheduled all-or-nothing"
            )

    @property
    def mask_id(self) -> int:
        return self.family.mask_id

    @property
    def eos_ids(self) -> tuple[int, ...]:
        return self.family.eos_ids
