"""Per-family tokenizer layouts of the tiny checkpoints, keyed by HF `architectures[0]`.

Strings, their relative id order, the special-token roles and the chat template follow each
family's published tokenizer; ids are those of the tiny vocabulary (BPE first, then these).
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from ..registry import Registry
from . import templates

Ids = Mapping[str, "str | tuple[str, ...]"]


@dataclass(frozen=True)
class TokenizerSpec:
    """How one family's tokenizer and id-carrying config files look.

    added: (content, special) of the family's added tokens, in the real tokenizer's id order.
    config_ids: config.json id key -> token it names (applied to the keys TINY_CONFIG has).
    generation_ids: generation_config.json id key -> token(s); None where the family ships none.
    """

    added: tuple[tuple[str, bool], ...]
    eos: str
    chat_template: str
    config_ids: Mapping[str, str]
    generation_ids: Ids | None
    bos: str | None = None
    pad: str | None = None
    mask: str | None = None

    def __post_init__(self) -> None:
        names = [content for content, _ in self.added]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate added tokens in {names}")
        used = [self.eos, self.bos, self.pad, self.mask, *self.config_ids.values()]
        for ids in (self.generation_ids or {}).values():
            used.extend((ids,) if isinstance(ids, str) else ids)
        for token in used:
            if token is not None and token not in names:
                raise ValueError(f"token {token!r} is not among the added tokens {names}")
        object.__setattr__(self, "config_ids", MappingProxyType(dict(self.config_ids)))
        if self.generation_ids is not None:
            object.__setattr__(self, "generation_ids", MappingProxyType(dict(self.generation_ids)))


TOKENIZER_SPECS: Registry[TokenizerSpec] = Registry("tiny tokenizer architecture")


def _special(*names: str) -> tuple[tuple[str, bool], ...]:
    return tuple((n, True) for n in names)


def _plain(*names: str) -> tuple[tuple[str, bool], ...]:
    return tuple((n, False) for n in names)


# Qwen2.5's added tokens (ids 151643..151664 in the real vocab); the tool / FIM ones are not special.
_QWEN2 = _special(
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
) + _plain(
    "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
    "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>",
)
# Qwen3 appends four more (ids 151665..151668), so SDAR's <|MASK|> lands on 151669.
_QWEN3 = _QWEN2 + _plain("<tool_response>", "</tool_response>", "<think>", "</think>")
# Ling 2.0 (BailingMoeV2) tokens used by LLaDA2.x and LLaDA-MoE: EOS 156892 precedes mask 156895.
_LING = _special(
    "<|startoftext|>", "<|endoftext|>", "<|mask|>", "<role>", "</role>", "<|role_end|>",
) + _plain("<think>", "</think>")

_LING_SPEC = dict(
    added=_LING, bos="<|startoftext|>", eos="<|endoftext|>", pad="<|endoftext|>", mask="<|mask|>",
    chat_template=templates.BAILING2,
    config_ids={"mask_token_id": "<|mask|>", "eos_token_id": "<|endoftext|>",
                "pad_token_id": "<|endoftext|>", "bos_token_id": "<|startoftext|>"},
    generation_ids={"bos_token_id": "<|startoftext|>", "eos_token_id": "<|endoftext|>",
                    "pad_token_id": "<|endoftext|>"},
)
_SDAR_SPEC = dict(
    added=_QWEN3 + _special("<|MASK|>"), eos="<|im_end|>", pad="<|endoftext|>", mask="<|MASK|>",
    chat_template=templates.QWEN3,
    config_ids={"mask_token_id": "<|MASK|>", "eos_token_id": "<|endoftext|>",
                "pad_token_id": "<|endoftext|>", "bos_token_id": "<|endoftext|>"},
    generation_ids={"bos_token_id": "<|endoftext|>", "eos_token_id": ("<|im_end|>", "<|endoftext|>"),
                    "pad_token_id": "<|endoftext|>"},
)

TOKENIZER_SPECS.add("LLaDAModelLM", TokenizerSpec(
    added=_special("<|startoftext|>", "<|endoftext|>", "<|mdm_mask|>", "<|start_header_id|>",
                   "<|end_header_id|>", "<|eot_id|>"),
    bos="<|startoftext|>", eos="<|endoftext|>", pad="<|endoftext|>", mask="<|mdm_mask|>",
    chat_template=templates.LLAMA3,
    config_ids={"mask_token_id": "<|mdm_mask|>", "eos_token_id": "<|endoftext|>",
                "pad_token_id": "<|endoftext|>", "bos_token_id": "<|startoftext|>"},
    generation_ids={"bos_token_id": "<|startoftext|>", "eos_token_id": "<|endoftext|>",
                    "pad_token_id": "<|endoftext|>"},
))
TOKENIZER_SPECS.add("LLaDAMoEModelLM", TokenizerSpec(**_LING_SPEC))
TOKENIZER_SPECS.add("LLaDA2MoeModelLM", TokenizerSpec(**_LING_SPEC))
TOKENIZER_SPECS.add("DreamModel", TokenizerSpec(
    added=_QWEN2 + _special("<|beginoftext|>", "<|mask|>"),
    bos="<|beginoftext|>", eos="<|endoftext|>", pad="<|endoftext|>", mask="<|mask|>",
    chat_template=templates.QWEN2,
    # NOTE: Dream's config/generation ids use <|endoftext|> (151643) as BOS too; only the
    # tokenizer names <|beginoftext|> its bos_token.
    config_ids={"mask_token_id": "<|mask|>", "eos_token_id": "<|endoftext|>",
                "pad_token_id": "<|endoftext|>", "bos_token_id": "<|endoftext|>"},
    generation_ids={"bos_token_id": "<|endoftext|>", "eos_token_id": "<|endoftext|>",
                    "pad_token_id": "<|endoftext|>", "mask_token_id": "<|mask|>"},
))
TOKENIZER_SPECS.add("SDARForCausalLM", TokenizerSpec(**_SDAR_SPEC))
TOKENIZER_SPECS.add("SDARMoeForCausalLM", TokenizerSpec(**_SDAR_SPEC))
TOKENIZER_SPECS.add("Fast_dLLM_QwenForCausalLM", TokenizerSpec(
    added=_QWEN2 + _special("|<MASK>|"), eos="<|im_end|>", pad="<|endoftext|>", mask="|<MASK>|",
    chat_template=templates.QWEN2,
    config_ids={"mask_token_id": "|<MASK>|", "eos_token_id": "<|im_end|>",
                "pad_token_id": "<|endoftext|>", "bos_token_id": "<|endoftext|>"},
    generation_ids={"bos_token_id": "<|endoftext|>", "eos_token_id": ("<|im_end|>", "<|endoftext|>"),
                    "pad_token_id": "<|endoftext|>"},
))
