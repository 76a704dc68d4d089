"""Per-request decoding settings from vLLM's `SamplingParams`: knobs, server defaults, family rules.

Engine-free (reads attributes only, never imports vLLM), so it is testable without an engine.

Where a request's settings come from, lowest priority first:
1. the family: its default algorithm, and that algorithm's published steps / threshold
   (`FamilySpec.decode_knobs`, shared with the CLI);
2. server-wide defaults, `--additional-config '{"dllm": {"algorithm": ..., ...}}'`
   (`ServedDecoding.from_additional_config`); checked at launch;
3. the standard fields of the request: temperature, top_p, top_k, seed (server-wide
   defaults for these are vLLM's own `--override-generation-config`);
4. `SamplingParams.extra_args` (the OpenAI body's `vllm_xargs`) under the `DecodeConfig`
   field names, plus `block_size` and `cache_mode`.
Every value is checked with the core's rules (`policies.validate`,
`ResolvedFamily.check_block_size`, `limits.Limits`: block size and steps per block bounded,
server-wide `max_block_size` / `max_steps` in the same `dllm` section); a bad one raises
`KnobError`, a ValueError naming the field, which the front end turns into HTTP 400 before
the request is admitted.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..core.families import FamilySpec, ResolvedFamily
from ..core.limits import LIMIT_KEYS, LimitError, Limits
from ..core.policies.base import DecodeConfig
from ..core.reference.generators import CACHE_MODES

DECODE_FIELDS: frozenset[str] = frozenset(f.name for f in dataclasses.fields(DecodeConfig))
REQUEST_FIELDS: frozenset[str] = frozenset({"block_size", "cache_mode"})
KNOBS: frozenset[str] = DECODE_FIELDS | REQUEST_FIELDS
# standard SamplingParams fields: their server-wide defaults belong to vLLM's generation config
SAMPLING_FIELDS: frozenset[str] = frozenset({"temperature", "top_p", "top_k", "seed"})
# NOTE: keys vLLM itself puts into extra_args (disaggregated serving); passed through untouched
ENGINE_KEYS: frozenset[str] = frozenset({"kv_transfer_params", "ec_transfer_params", "kv_cache_report_mode"})
_FLAGS = frozenset(f.name for f in dataclasses.fields(DecodeConfig) if f.type in ("bool", bool))
ADDITIONAL_CONFIG_KEY = "dllm"
# kv_transfer_params[STATS_KEY] of a finished request: {"nfe", "denoising_steps", "tokens_per_forward"}
STATS_KEY = "dllm"
SEED_MAX = 2**63 - 1  # the core's seeds are int64 (policies.validate)


class KnobError(ValueError):
    """A bad decoding setting; `field` names it (the OpenAI error's `param`)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class RequestDecoding:
    """One request's validated settings: the policy config, the block size and cache mode."""

    decode: DecodeConfig
    block_size: int
    cache_mode: str


# SamplingParams features a denoising step cannot honour: field -> (is it requested?, why not)
_UNSUPPORTED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "logprobs": (lambda v: v is not None, "log-probabilities of committed tokens are not computed"),
    "prompt_logprobs": (lambda v: v is not None, "prompt log-probabilities are not computed"),
    "structured_outputs": (lambda v: v is not None, "grammars constrain left-to-right decoding only"),
    "logit_bias": (bool, "the denoising policies read raw logits"),
    "allowed_token_ids": (bool, "the denoising policies read raw logits"),
    "bad_words": (bool, "the denoising policies read raw logits"),
}


def check_supported(params: Any) -> None:
    """Refuses standard fields that diffusion decoding would otherwise silently ignore."""
    for name, (requested, why) in _UNSUPPORTED.items():
        if requested(getattr(params, name, None)):
            raise KnobError(name, f"{name} is not supported by diffusion decoding: {why}")


def _from_sampling(params: Any) -> dict[str, Any]:
    """The knobs SamplingParams already carries, in DecodeConfig terms.

    NOTE: the scheduler gives a request without a seed one of its own before the scheduler
    or a worker reads its settings (`DllmScheduler.add_request`); only the front end's check
    sees None here (and validates with DecodeConfig's default).
    """
    out: dict[str, Any] = {"temperature": float(params.temperature), "top_p": float(params.top_p)}
    top_k = int(params.top_k or 0)
    out["top_k"] = 0 if top_k < 0 else top_k  # vLLM's -1 means "off", like our 0
    if params.seed is not None:
        out["seed"] = int(params.seed)
    return out


def _check_child_seeds(params: Any, seed: int) -> None:
    """vLLM gives the i-th of n samples the seed `seed + i`: the last one must be a valid seed too."""
    n = int(getattr(params, "n", 1) or 1)
    if params.seed is not None and seed + n - 1 > SEED_MAX:
        raise KnobError("seed", f"seed {seed} with n={n}: sample i gets seed + i, above the largest seed {SEED_MAX}")


def _check_names(knobs: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    for name in knobs:
        if name not in allowed and name not in ENGINE_KEYS:
            raise KnobError(
                name, f"unknown decoding knob {name!r} in {where}; valid knobs: {', '.join(sorted(allowed))}"
            )


def _as_flag(name: str, value: Any) -> Any:
    # NOTE: the OpenAI body's vllm_xargs holds str / int / float only, so JSON true arrives as 1
    if name in _FLAGS and not isinstance(value, bool) and isinstance(value, int) and value in (0, 1):
        return bool(value)
    return value


def _validated(knobs: dict[str, Any]) -> DecodeConfig:
    """policies.validate; when it fails, again one field at a time so that the error names its field."""
    from ..core import policies

    # NOTE: the fast path runs for every request, several times (front end, scheduler,
    # runner): one validate call instead of one per knob
    try:
        return policies.validate(DecodeConfig(**knobs))
    except (TypeError, ValueError):
        pass
    algorithm = knobs["algorithm"]
    try:
        policies.validate(DecodeConfig(algorithm=algorithm))
    except ValueError as e:
        raise KnobError("algorithm", str(e)) from None
    for name, value in knobs.items():
        if name == "algorithm":
            continue
        try:
            policies.validate(DecodeConfig(algorithm=algorithm, **{name: value}))
        except ValueError as e:
            raise KnobError(name, str(e)) from None
    return policies.validate(DecodeConfig(**knobs))


def _decode(params: Any, spec: FamilySpec, defaults: Mapping[str, Any]) -> DecodeConfig:
    extra: Mapping[str, Any] = params.extra_args or {}
    knobs = _from_sampling(params)
    knobs.update({k: v for k, v in defaults.items() if k in DECODE_FIELDS})
    knobs.update({k: _as_flag(k, v) for k, v in extra.items() if k in DECODE_FIELDS})
    decode = _validated(spec.decode_knobs(knobs))
    _check_child_seeds(params, decode.seed)
    return decode


def _block_size(value: Any, family: ResolvedFamily, max_tokens: int | None, limits: Limits) -> int:
    if value is None:
        value = family.block_size
        if value == 0:  # the family's default block is the whole canvas (Dream), up to the largest block
            value = min(max_tokens or family.max_len, limits.max_block_size)
    try:
        return family.check_block_size(value)
    except ValueError as e:
        raise KnobError("block_size", str(e)) from None


def _cache_mode(value: Any, spec: FamilySpec) -> str:
    if value is None:
        return "exact"
    if not isinstance(value, str) or value not in CACHE_MODES:
        raise KnobError("cache_mode", f"unknown cache_mode {value!r}; valid choices: {', '.join(CACHE_MODES)}")
    if spec.attention == "block_causal" and value != "exact":
        raise KnobError(
            "cache_mode",
            f"cache_mode {value!r} is for full-attention families; {spec.architecture} is block-causal "
            f"and its KV cache is exact: use 'exact'",
        )
    return value


@dataclass(frozen=True)
class ServedDecoding:
    """The served checkpoint's family, the server-wide knob defaults and limits (validated)."""

    family: ResolvedFamily
    defaults: tuple[tuple[str, Any], ...] = ()  # (knob, value) pairs: hashable, frozen
    limits: Limits | None = None  # None: blocks up to the model's maximum length, DEFAULT_MAX_STEPS

    def __post_init__(self) -> None:
        if self.limits is None:
            object.__setattr__(self, "limits", Limits(max_block_size=self.family.max_len))
        defaults = dict(self.defaults)
        _check_names(defaults, KNOBS - SAMPLING_FIELDS, f"additional_config[{ADDITIONAL_CONFIG_KEY!r}]")
        try:
            self.request(_NeutralParams())
        except KnobError as e:
            raise KnobError(e.field, f"additional_config[{ADDITIONAL_CONFIG_KEY!r}]: {e}") from None

    @classmethod
    def from_additional_config(
        cls, family: ResolvedFamily, additional_config: Any, max_model_len: int | None = None
    ) -> "ServedDecoding":
        """Reads `additional_config["dllm"]` (vLLM's `--additional-config` JSON): knob defaults
        plus the limits `max_block_size` (default: max_model_len, else the model's maximum
        length) and `max_steps`."""
        section = (additional_config or {}).get(ADDITIONAL_CONFIG_KEY) if isinstance(additional_config, Mapping) else None
        if section is not None and not isinstance(section, Mapping):
            raise ValueError(
                f"additional_config[{ADDITIONAL_CONFIG_KEY!r}] must be a JSON object of decoding knobs, "
                f"got {section!r}"
            )
        knobs = dict(section or {})
        bounds = {k: knobs.pop(k) for k in LIMIT_KEYS if k in knobs}
        bounds.setdefault("max_block_size", min(family.max_len, max_model_len or family.max_len))
        try:
            limits = Limits(**bounds)
        except LimitError as e:
            raise KnobError(e.field, f"additional_config[{ADDITIONAL_CONFIG_KEY!r}]: {e}") from None
        return cls(family, tuple(sorted((k, _as_flag(k, v)) for k, v in knobs.items())), limits)

    @classmethod
    def for_spec(cls, spec: FamilySpec) -> "ServedDecoding":
        """Without a checkpoint: the family's published ids and block size stand in for its own."""
        family = ResolvedFamily(
            spec=spec, mask_id=spec.default_mask_id, eos_ids=spec.default_eos_ids,
            block_size=spec.default_block_size, vocab_size=0, max_len=1 << 30,
        )
        return cls(family)

    def request(self, params: Any) -> RequestDecoding:
        """Validates one request's SamplingParams."""
        extra: Mapping[str, Any] = params.extra_args or {}
        _check_names(extra, KNOBS, "extra_args (vllm_xargs)")
        check_supported(params)
        defaults = dict(self.defaults)
        pick = lambda name: extra.get(name, defaults.get(name))  # noqa: E731
        decode = _decode(params, self.family.spec, defaults)
        if decode.cfg_scale > 0:
            raise KnobError(
                "cfg_scale", f"cfg_scale {decode.cfg_scale:g} is not served by the vLLM adapter: the "
                f"unconditional pass would need a second sequence per request",
            )
        limits: Limits = self.limits  # type: ignore[assignment]  # set in __post_init__
        block = _block_size(pick("block_size"), self.family, getattr(params, "max_tokens", None), limits)
        try:
            limits.check(decode, block)
        except LimitError as e:
            raise KnobError(e.field, str(e)) from None
        return RequestDecoding(decode=decode, block_size=block, cache_mode=_cache_mode(pick("cache_mode"), self.family.spec))


@dataclass(frozen=True)
class _NeutralParams:
    """A request that sets nothing: validates server defaults on their own at launch."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int | None = None
    max_tokens: int | None = None
    extra_args: Mapping[str, Any] | None = None


def decode_config(params: Any, spec: FamilySpec) -> DecodeConfig:
    """The policy config of one request, without server defaults (`ServedDecoding.request`
    is the full path); kept for callers that hold only the family spec."""
    return _decode(params, spec, {})
