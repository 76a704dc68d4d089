"""A plain per-layer KV cache for the reference networks.

Each layer holds keys/values shaped [R, H_kv, S, D]. What a forward does with its new
keys/values is chosen per forward by a `CacheWrite`:
- ``"none"``: attend to cache + new, store nothing (a denoising step over a block);
- ``"append"``: attend to cache + new, then keep the new ones (prefill, block commit);
- an ``int`` start: overwrite positions [start, start + L) in place and attend to the
  whole cache (Fast-dLLM's dual cache, whose cache also holds the suffix).
"""
from __future__ import annotations

from typing import Literal, Union

import torch

CacheWrite = Union[Literal["none", "append"], int]


class KVCache:
    def __init__(self, num_layers: int) -> None:
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers

    @property
    def length(self) -> int:
        k = self.keys[0]
        return 0 if k is None else k.shape[2]

    def update(
        self, layer: int, k: torch.Tensor, v: torch.Tensor, write: CacheWrite
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns the keys/values layer `layer` attends to; k, v: [R, H_kv, L, D]."""
        old_k, old_v = self.keys[layer], self.values[layer]
        if isinstance(write, int) and not isinstance(write, bool):
            if old_k is None or write < 0 or write + k.shape[2] > old_k.shape[2]:
                raise ValueError(f"cannot overwrite cache positions [{write}, {write + k.shape[2]})")
            old_k[:, :, write : write + k.shape[2]] = k
            old_v[:, :, write : write + v.shape[2]] = v
            return old_k, old_v
        if write not in ("none", "append"):
            raise ValueError(f"unknown cache write {write!r}; valid: 'none', 'append', or an int start")
        full_k = k if old_k is None else torch.cat([old_k, k], dim=2)
        full_v = v if old_v is None else torch.cat([old_v, v], dim=2)
        if write == "append":
            self.keys[layer], self.values[layer] = full_k, full_v
        return full_k, full_v

    def truncate(self, length: int) -> None:
        """Drops everything from position `length` on (e.g. to re-run a block)."""
        for i, (k, v) in enumerate(zip(self.keys, self.values)):
            if k is not None:
                self.keys[i], self.values[i] = k[:, :, :length], v[:, :, :length]
