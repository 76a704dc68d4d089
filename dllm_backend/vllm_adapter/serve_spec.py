"""What the adapter needs to know about the served checkpoint: ids, block size, block boundaries.

Engine-free (no vLLM import): built from the checkpoint directory with the core's
`families.resolve_dir`, so the engine and the reference read the same ids.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..core.families import ResolvedFamily, resolve_dir


@dataclass(frozen=True)
class ServeSpec:
    """One served checkpoint. `block` is the denoising block (the trained block for
    block-causal families). Blocks are aligned to absolute position 0."""

    family: ResolvedFamily
    block: int

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> "ServeSpec":
        family = resolve_dir(model_dir)
        if family.spec.attention != "block_causal" or family.spec.block_alignment != "absolute":
            raise ValueError(
                f"{family.spec.architecture} is not served by the vLLM adapter yet: it supports "
                f"block-causal families with blocks aligned to position 0 (e.g. SDARForCausalLM)"
            )
        if family.spec.logit_shift:
            raise ValueError(f"{family.spec.architecture} has shifted logits, not served by the vLLM adapter yet")
        return cls(family=family, block=family.block_size)

    @property
    def mask_id(self) -> int:
        return self.family.mask_id

    @property
    def eos_ids(self) -> tuple[int, ...]:
        return self.family.eos_ids

    def floor(self, pos: int) -> int:
        """Start of the block holding position `pos` (or `pos` itself on a boundary)."""
        return pos - pos % self.block

    def next_boundary(self, pos: int) -> int:
        """First block boundary strictly after `pos`."""
        return self.floor(pos) + self.block
