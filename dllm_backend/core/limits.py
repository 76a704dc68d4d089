"""Bounds on the work of one request: block size and denoising steps per block.

A block is denoised whole, and policies on Dream's schedule (maskgit_plus, topk_margin,
entropy, origin) run exactly `steps` forwards per block, so both knobs must be bounded or
one request can hold a batch slot for hours. `Limits.check` refuses, naming the field:
- `block_size` above `max_block_size` (default: the model's maximum length; a block never
  holds more positions than the context);
- `steps` or `max_post_edit_steps` above `max_steps` (default `DEFAULT_MAX_STEPS`).
The reference generators (`validate_request`) and the vLLM adapter apply the same check;
the server can set both bounds (`--additional-config '{"dllm": {"max_steps": ...}}'`).
"""
from __future__ import annotations

from dataclasses import dataclass

from .policies.base import DecodeConfig

# NOTE: one token per step over a 1,024-token block: above the published recipes (LLaDA 32
# steps per 32-token block, Dream's default 512 steps over its whole 512-token canvas, SDAR 4
# per 4-token block), while no block of any request runs more than 1,024 forwards.
DEFAULT_MAX_STEPS = 1024
LIMIT_KEYS: tuple[str, ...] = ("max_block_size", "max_steps")


class LimitError(ValueError):
    """A request above a limit; `field` names the request field (block_size, steps, ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LimitError(name, f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass(frozen=True)
class Limits:
    """The largest block and the most denoising steps per block a request may ask for."""

    max_block_size: int
    max_steps: int = DEFAULT_MAX_STEPS

    def __post_init__(self) -> None:
        for name in LIMIT_KEYS:
            _positive(name, getattr(self, name))

    def check(self, decode: DecodeConfig, block_size: int) -> None:
        """Raises `LimitError` naming the first field above its limit."""
        if block_size > self.max_block_size:
            raise LimitError(
                "block_size", f"block_size {block_size} is above the maximum {self.max_block_size} "
                f"(max_block_size: a block holds at most the model's context)",
            )
        for name in ("steps", "max_post_edit_steps"):
            value = getattr(decode, name)
            if value is not None and value > self.max_steps:
                raise LimitError(
                    name, f"{name} {value} is above the maximum {self.max_steps} denoising steps per "
                    f"block (max_steps)",
                )
