"""Family specs: what differs between dLLM families, keyed by HF `architectures[0]`.

Ids (mask, EOS, stop) are read from the checkpoint's config / generation config /
tokenizer; the published defaults here are only fallbacks.
"""
from __future__ import annotations

import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from .registry import Registry

Attention = Literal["bidirectional", "block_causal"]
Alignment = Literal["generation", "absolute"]
# NOTE: output tokens of a request that does not say (no max_tokens) when the checkpoint's
# generation_config.json has no max_new_tokens: LLaDA's published example length (gen_length
# 128), a few blocks of every family. Without it, engines hand the whole remaining context
# to the canvas (stock vLLM's default), which a dLLM fills with masks and denoises at once.
DEFAULT_MAX_TOKENS = 128


@dataclass(frozen=True)
class FamilySpec:
    architecture: str  # HF architectures[0]
    model_type: str  # config.json model_type
    attention: Attention
    logit_shift: bool  # token i is read from the logits at i - 1
    block_alignment: Alignment  # blocks start at generation start, or at absolute position 0
    default_block_size: int  # semi-AR block (full attention) / trained block (block-causal)
    block_size_key: str | None  # config key holding the trained block size (block-causal)
    default_algorithm: str
    default_steps: int | None  # denoising steps per block by default (None = block size)
    default_threshold: float | None
    default_mask_id: int
    default_eos_ids: tuple[int, ...]  # EOS, end-of-turn, stop tokens: generation ends at any
    generator: str  # reference generator name (core.reference.generators registry)
    reference_model: str  # "module:Class" of the reference network
    config_class: str  # "module:Class" of the transformers config class
    mask_token: str | None = None  # tokenizer name of the mask token (fallback for its id)
    stop_tokens: tuple[str, ...] = ()  # tokenizer names of extra stops (e.g. end-of-turn)
    sub_block_size: int | None = None  # Fast-dLLM v2 sub-blocks
    max_len_key: str = "max_position_embeddings"
    # top_p / top_k also shape a greedy (temperature 0) row's confidence, as in Dream's
    # `sample_tokens` (and SDAR's, LLaDA2's); Fast-dLLM v2's `sample_with_top_p` returns the
    # plain softmax at temperature 0 and ignores its top_p there
    greedy_filters: bool = True

    def load_class(self, which: Literal["reference_model", "config_class"]) -> type:
        module, _, name = getattr(self, which).partition(":")
        return getattr(importlib.import_module(module), name)

    def decode_knobs(self, knobs: Mapping[str, Any]) -> dict[str, Any]:
        """`knobs` (`DecodeConfig` field -> value; None or absent = unset) with the family's
        defaults filled in: its default algorithm and, for that algorithm only, its published
        steps / threshold; and its greedy rule (`greedy_filters`). The one source of these for
        the CLI, the reference generators and the engine adapters."""
        out = dict(knobs)
        # NOTE: a family rule, not a default: it overrides given values
        if not self.greedy_filters and not out.get("temperature"):
            out["top_p"], out["top_k"] = 1.0, 0
        if out.get("algorithm") is None:
            out["algorithm"] = self.default_algorithm
        if out["algorithm"] == self.default_algorithm:
            for name, value in (("steps", self.default_steps), ("threshold", self.default_threshold)):
                if out.get(name) is None:
                    out[name] = value
        return out


FAMILIES: Registry[FamilySpec] = Registry("dLLM architecture")

_M = "dllm_backend.core.reference.models"
_C = "dllm_backend.core.configs"


def _add(spec: FamilySpec) -> None:
    FAMILIES.add(spec.architecture, spec)


_add(FamilySpec(
    architecture="LLaDAModelLM", model_type="llada", attention="bidirectional", logit_shift=False,
    block_alignment="generation", default_block_size=32, block_size_key=None,
    default_algorithm="low_confidence", default_steps=None, default_threshold=None,
    default_mask_id=126336, default_eos_ids=(126081, 126348), generator="full_attention",
    reference_model=f"{_M}.llada:LLaDAModelLM", config_class=f"{_C}.llada:LLaDAConfig",
    mask_token="<|mdm_mask|>", stop_tokens=("<|endoftext|>", "<|eot_id|>"),
    max_len_key="max_sequence_length",
))
_add(FamilySpec(
    # NOTE: the real LLaDA-MoE config.json says model_type "llada" like LLaDA-8B; AutoConfig
    # holds one class per model_type, so ours registers as "lladamoe" and loading goes by
    # `architectures` (which is how every loader here and in the adapters dispatches).
    architecture="LLaDAMoEModelLM", model_type="lladamoe", attention="bidirectional",
    logit_shift=False, block_alignment="generation", default_block_size=32, block_size_key=None,
    default_algorithm="low_confidence", default_steps=None, default_threshold=None,
    default_mask_id=156895, default_eos_ids=(156892,), generator="full_attention",
    reference_model=f"{_M}.llada_moe:LLaDAMoEModelLM", config_class=f"{_C}.llada_moe:LLaDAMoEConfig",
    mask_token="<|mask|>", stop_tokens=("<|endoftext|>", "<|eot_id|>", "<|role_end|>"),
))
_add(FamilySpec(
    architecture="DreamModel", model_type="Dream", attention="bidirectional", logit_shift=True,
    block_alignment="generation", default_block_size=0, block_size_key=None,
    # NOTE: Dream's model card decodes with `entropy`; its ranking of near-uniform
    # distributions (random or barely trained weights) flips with 1e-7 logit rounding,
    # even between the reference's own fp32 and fp64 runs, so the default is Dream's
    # max-probability rule; `entropy` stays one request knob away.
    default_algorithm="maskgit_plus", default_steps=None, default_threshold=None,
    default_mask_id=151666, default_eos_ids=(151643,), generator="full_attention",
    reference_model=f"{_M}.dream:DreamModel", config_class=f"{_C}.dream:DreamConfig",
    mask_token="<|mask|>", stop_tokens=("<|endoftext|>", "<|im_end|>"),
))
_add(FamilySpec(
    architecture="SDARForCausalLM", model_type="sdar", attention="block_causal", logit_shift=False,
    block_alignment="absolute", default_block_size=4, block_size_key="block_size",
    default_algorithm="low_confidence_dynamic", default_steps=None, default_threshold=0.85,
    default_mask_id=151669, default_eos_ids=(151643,), generator="block_diffusion",
    reference_model=f"{_M}.sdar:SDARForCausalLM", config_class=f"{_C}.sdar:SDARConfig",
    mask_token="<|MASK|>", stop_tokens=("<|endoftext|>", "<|im_end|>"),
))
_add(FamilySpec(
    architecture="SDARMoeForCausalLM", model_type="sdar_moe", attention="block_causal",
    logit_shift=False, block_alignment="absolute", default_block_size=4, block_size_key="block_size",
    default_algorithm="low_confidence_dynamic", default_steps=None, default_threshold=0.85,
    default_mask_id=151669, default_eos_ids=(151643,), generator="block_diffusion",
    reference_model=f"{_M}.sdar_moe:SDARMoeForCausalLM", config_class=f"{_C}.sdar_moe:SDARMoeConfig",
    mask_token="<|MASK|>", stop_tokens=("<|endoftext|>", "<|im_end|>"),
))
_add(FamilySpec(
    architecture="LLaDA2MoeModelLM", model_type="llada2_moe", attention="block_causal",
    logit_shift=False, block_alignment="absolute", default_block_size=32, block_size_key="block_size",
    default_algorithm="low_confidence_dynamic", default_steps=None, default_threshold=0.95,
    default_mask_id=156895, default_eos_ids=(156892,), generator="block_diffusion",
    reference_model=f"{_M}.llada2:LLaDA2MoeModelLM", config_class=f"{_C}.llada2:LLaDA2MoeConfig",
    mask_token="<|mask|>", stop_tokens=("<|endoftext|>", "<|role_end|>"),
))
_add(FamilySpec(
    architecture="Fast_dLLM_QwenForCausalLM", model_type="Fast_dLLM_Qwen", attention="block_causal",
    logit_shift=True, block_alignment="absolute", default_block_size=32, block_size_key="bd_size",
    default_algorithm="threshold", default_steps=None, default_threshold=0.95,
    default_mask_id=151665, default_eos_ids=(151645,), generator="fast_dllm_v2",
    reference_model=f"{_M}.fast_dllm:Fast_dLLM_QwenForCausalLM",
    config_class=f"{_C}.fast_dllm:Fast_dLLM_QwenConfig", sub_block_size=8, greedy_filters=False,
    mask_token="|<MASK>|", stop_tokens=("<|im_end|>",),
))


@dataclass(frozen=True)
class ResolvedFamily:
    """A family spec with the ids and sizes of one concrete checkpoint."""

    spec: FamilySpec
    mask_id: int
    eos_ids: tuple[int, ...]
    block_size: int  # default block (full attention) or the trained block (block-causal)
    vocab_size: int
    max_len: int
    # output tokens when a request sets none: generation_config's max_new_tokens, else DEFAULT_MAX_TOKENS
    default_max_tokens: int = DEFAULT_MAX_TOKENS

    def check_block_size(self, block_size: int) -> int:
        """Validates a requested block size for this checkpoint; returns it."""
        if not isinstance(block_size, int) or isinstance(block_size, bool) or block_size < 1:
            raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
        if self.spec.attention == "block_causal" and block_size != self.block_size:
            raise ValueError(
                f"block_size {block_size} is not valid for {self.spec.architecture}: it was trained "
                f"with block-causal attention over blocks of {self.block_size}; valid choices: {self.block_size}"
            )
        sub = self.spec.sub_block_size
        if sub is not None and block_size % sub:
            raise ValueError(f"block_size {block_size} must be a multiple of the sub-block size {sub}")
        return block_size


def _ids(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, int):
        return (value,)
    return tuple(int(v) for v in value)


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def spec_for(config: Mapping[str, Any]) -> FamilySpec:
    archs = config.get("architectures") or []
    if not archs:
        raise ValueError("config.json has no 'architectures'; cannot tell the dLLM family")
    return FAMILIES.get(archs[0])


def _mask_id(
    spec: FamilySpec, config: Mapping[str, Any], gen: Mapping[str, Any], tok: Mapping[str, int], source: str
) -> int:
    """The checkpoint's mask id: config, generation config, tokenizer, family fallback, in that
    order; ValueError naming the checkpoint when the id found is not in the vocabulary."""
    vocab = int(config["vocab_size"])
    for where, found in (("config.json", config.get("mask_token_id")),
                         ("generation_config.json", gen.get("mask_token_id"))):
        if found is not None:
            if isinstance(found, bool) or not isinstance(found, int) or not 0 <= found < vocab:
                raise ValueError(
                    f"{source}: mask_token_id {found!r} in {where} is not a token id of its "
                    f"vocabulary of {vocab} tokens"
                )
            return found
    if spec.mask_token in tok:
        return int(tok[spec.mask_token])
    if spec.default_mask_id < vocab:
        return spec.default_mask_id
    raise ValueError(
        f"{source} has no usable mask token id: no mask_token_id in config.json or "
        f"generation_config.json, no {spec.mask_token!r} token in its tokenizer, and the "
        f"{spec.architecture} fallback id {spec.default_mask_id} is outside its vocabulary of "
        f"{vocab} tokens; add mask_token_id to config.json"
    )


def resolve(
    config: Mapping[str, Any],
    generation_config: Mapping[str, Any] | None = None,
    special_tokens: Mapping[str, int] | None = None,
    source: str = "the checkpoint",
) -> ResolvedFamily:
    """Reads ids and sizes of a checkpoint from its config dicts, with family fallbacks.

    special_tokens: the tokenizer's added tokens (name -> id), used for the mask id when
    the config lacks one and for the family's extra stop tokens (e.g. end-of-turn).
    source: how errors name the checkpoint (its directory). A checkpoint without a mask
    id inside its vocabulary is refused here rather than failing at generation.
    """
    spec = spec_for(config)
    gen = generation_config or {}
    tok = special_tokens or {}
    mask_id = _mask_id(spec, config, gen, tok, source)
    eos = _ids(gen.get("eos_token_id")) + _ids(config.get("eos_token_id"))
    eos += tuple(tok[name] for name in spec.stop_tokens if name in tok)
    eos = tuple(dict.fromkeys(eos)) or spec.default_eos_ids
    block = spec.default_block_size
    if spec.block_size_key is not None:
        block = int(config.get(spec.block_size_key, block))
    max_len = int(config.get(spec.max_len_key) or config.get("max_position_embeddings") or 1 << 30)
    return ResolvedFamily(
        spec=spec, mask_id=mask_id, eos_ids=eos, block_size=block,
        vocab_size=int(config["vocab_size"]), max_len=max_len,
        default_max_tokens=int(gen.get("max_new_tokens") or DEFAULT_MAX_TOKENS),
    )


def _special_tokens(model_dir: Path) -> dict[str, int]:
    added = _read_json(model_dir / "tokenizer.json").get("added_tokens", [])
    return {t["content"]: int(t["id"]) for t in added}


def resolve_dir(model_dir: str | Path) -> ResolvedFamily:
    """`resolve` for a checkpoint directory (config.json, generation_config.json, tokenizer.json)."""
    d = Path(model_dir)
    if not (d / "config.json").is_file():
        raise ValueError(f"{str(d)!r} is not a checkpoint directory: no config.json")
    return resolve(
        _read_json(d / "config.json"), _read_json(d / "generation_config.json"), _special_tokens(d), source=str(d)
    )
