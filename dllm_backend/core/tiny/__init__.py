"""Tiny random-weight checkpoints of every dLLM family, in each family's exact HF layout."""
from __future__ import annotations

from .checkpoint import TINY_ARCHITECTURES, TINY_VOCAB, make_tiny

__all__ = ["TINY_ARCHITECTURES", "TINY_VOCAB", "make_tiny"]
