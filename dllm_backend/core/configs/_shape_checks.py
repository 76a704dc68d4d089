"""Shape checks shared by the block-causal families' config classes (SDAR, SDAR-MoE, LLaDA2, Fast-dLLM v2)."""
from __future__ import annotations

from typing import Any


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def require_positive(config: Any, *names: str) -> None:
    """Raises ValueError naming the first attribute that is not a positive integer."""
    for name in names:
        value = getattr(config, name)
        if not _is_positive_int(value):
            raise ValueError(f"{type(config).__name__}.{name} must be a positive integer, got {value!r}")


def require_gqa(config: Any) -> None:
    """Query heads must split evenly over the key/value heads (grouped-query attention)."""
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    if heads % kv_heads:
        raise ValueError(
            f"{type(config).__name__}: num_attention_heads {heads} is not a multiple of "
            f"num_key_value_heads {kv_heads}"
        )


def require_top_k(config: Any) -> None:
    """A token cannot be routed to more experts than exist."""
    k, n = config.num_experts_per_tok, config.num_experts
    if k > n:
        raise ValueError(f"{type(config).__name__}: num_experts_per_tok {k} exceeds num_experts {n}")
