"""The common base of the concrete policies: no extra state, no defaults, adaptive schedule."""
from __future__ import annotations

from typing import ClassVar, Mapping

import torch

from .base import BlockState


class PolicyBase:
    """Subclasses set `name` (and `defaults` / `schedule` / `state_keys` when they differ)
    and implement `step` (see `base.Policy`)."""

    name: ClassVar[str] = ""
    defaults: ClassVar[Mapping[str, float | int]] = {}
    schedule: ClassVar[str] = "adaptive"
    state_keys: ClassVar[tuple[str, ...]] = ()

    def init_state(
        self, state: BlockState, mask_id: int, vocab_size: int | None
    ) -> dict[str, torch.Tensor]:
        return {}

    def __repr__(self) -> str:
        return f"<policy {self.name}>"
