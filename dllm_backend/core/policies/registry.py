"""The registry of denoising algorithms: `DecodeConfig.algorithm` -> policy instance."""
from __future__ import annotations

from typing import TypeVar

from ..registry import Registry
from .base import Policy

POLICIES: Registry[Policy] = Registry("decoding algorithm")

P = TypeVar("P", bound=type)


def register(cls: P) -> P:
    """Class decorator: registers one instance of `cls` under `cls.name`."""
    POLICIES.add(cls.name, cls())
    return cls
