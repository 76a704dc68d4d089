"""Front-end validation of per-request decoding settings through vLLM's logits-processor hook.

vLLM calls `LogitsProcessor.validate_params(sampling_params)` for every request in the
front-end process (`InputProcessor._validate_params`), before the request reaches the
engine; a `VLLMValidationError` becomes HTTP 400 whose `param` names the field, and the
server keeps serving. One no-op processor class per architecture carries the family,
because the hook is a classmethod with no access to the served config.

`validator_for(arch, served)` also binds the served checkpoint (its own block size and the
server-wide `--additional-config '{"dllm": {...}}'` defaults) to that class; the binding
lives in the process that built the VllmConfig, which is the front end that validates.
Unbound, the family's published block size stands in for the checkpoint's.
"""
from __future__ import annotations

import sys
from functools import lru_cache

import torch
from vllm.exceptions import VLLMValidationError
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor

from ..core.families import FAMILIES, FamilySpec
from .decode_params import KnobError, ServedDecoding


@lru_cache(maxsize=None)
def _unbound(family: FamilySpec) -> ServedDecoding:
    return ServedDecoding.for_spec(family)


class _DecodeParamsValidator(LogitsProcessor):
    family: FamilySpec
    served: ServedDecoding | None = None  # bound by `validator_for` in the front-end process

    @classmethod
    def validate_params(cls, sampling_params) -> None:
        served = cls.served or _unbound(cls.family)
        try:
            served.request(sampling_params)
        except KnobError as e:
            raise VLLMValidationError(str(e), parameter=e.field) from None

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


def validator_for(arch: str, served: ServedDecoding | None = None) -> type[LogitsProcessor]:
    """The architecture's validator class; `served` (same architecture) is bound to it."""
    FAMILIES.get(arch)  # unknown architecture -> ValueError listing the valid ones
    cls = getattr(sys.modules[__name__], _class_name(arch))
    if served is not None:
        if served.family.spec.architecture != arch:
            raise ValueError(
                f"served checkpoint is a {served.family.spec.architecture}, not a {arch}: cannot bind it"
            )
        cls.served = served
    return cls
