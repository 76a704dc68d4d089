"""The contract of a reference network (one per architecture, in `reference/models/`).

A reference network mirrors the HF module tree, so its `state_dict()` keys are exactly
the real checkpoint's tensor names, and computes raw (unshifted) logits:

    forward(input_ids [R, L] long, positions [R, L] long,
            mask [R, L, S] bool | None  (True = may attend; S = cached + L; None = see all),
            cache: KVCache | None, write: CacheWrite = "none") -> logits [R, L, V] float32

Attention patterns (bidirectional / block-causal) are the generator's business: it
passes the mask. Shifting logits for shifted families is the generator's business too.
"""
from __future__ import annotations

import abc
from typing import ClassVar

import torch
from torch import nn

from .kv_cache import CacheWrite, KVCache


class ReferenceModel(nn.Module, abc.ABC):
    #: names that may be missing from a checkpoint because they are tied to another tensor
    tied_weights: ClassVar[dict[str, str]] = {}

    def __init__(self, config) -> None:
        super().__init__()
        self.config = config

    @property
    @abc.abstractmethod
    def num_layers(self) -> int:
        """Number of decoder layers (the KV cache has one entry per layer)."""

    def new_cache(self) -> KVCache:
        return KVCache(self.num_layers)

    @abc.abstractmethod
    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        cache: KVCache | None = None,
        write: CacheWrite = "none",
    ) -> torch.Tensor:
        """Raw logits [R, L, V] in float32 (see the module docstring)."""
