"""Front-end validation of per-request decoding knobs through vLLM's logits-processor hook.

vLLM calls `LogitsProcessor.validate_params(sampling_params)` for every request at
admission, in the front-end process, and turns a ValueError into a client error (HTTP 400).
One no-op processor class per architecture carries the family, because the hook is a
classmethod with no access to the served config.
"""
from __future__ import annotations

import sys

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor

from ..core.families import FAMILIES, FamilySpec
from .decode_params import decode_config


class _DecodeParamsValidator(LogitsProcessor):
    family: FamilySpec

    @classmethod
    def validate_params(cls, sampling_params) -> None:
        decode_config(sampling_params, cls.family)

    def __init__(self, vllm_config, device: torch.device, is_pin_memory: bool) -> None:
        pass

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        return logits

    def is_argmax_invariant(self) -> bool:
        return True

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        pass


def _class_name(arch: str) -> str:
    return f"DecodeParamsValidator_{arch}"


for _arch, _spec in FAMILIES.items():
    # module-level names so the classes pickle by reference into the engine process
    _cls = type(_class_name(_arch), (_DecodeParamsValidator,), {"family": _spec, "__module__": __name__})
    setattr(sys.modules[__name__], _class_name(_arch), _cls)


def validator_for(arch: str) -> type[LogitsProcessor]:
    FAMILIES.get(arch)  # unknown architecture -> ValueError listing the valid ones
    return getattr(sys.modules[__name__], _class_name(arch))
