"""transformers config classes of the dLLM families, registered with `AutoConfig`.

Registering them lets the real checkpoints (whose config.json carries an `auto_map` to
remote code) load without `trust_remote_code`.
"""
from __future__ import annotations

from ..families import FAMILIES

_registered = False


def register_configs() -> None:
    """Registers every family's config class with AutoConfig (idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AutoConfig

    for _, spec in FAMILIES.items():
        cls = spec.load_class("config_class")
        AutoConfig.register(spec.model_type, cls, exist_ok=True)
    _registered = True
