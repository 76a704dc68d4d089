"""LLaDA-8B on SGLang: its Llama model, bidirectional over prefix + block, with LLaDA's tensor names.

LLaDA's checkpoint (OLMo layout) names -> SGLang Llama names, by `LLADA_NAMES` (regex ->
replacement); SGLang's Llama loader then stacks q/k/v and gate/up itself. The config gets
Llama's attribute names (`llama_view`); the table covers `embedding_size` rows.
"""
from __future__ import annotations

import copy
import re
from typing import Iterable

import torch

from sglang.srt.models.llama import LlamaForCausalLM

from ._dllm import make_bidirectional

LLADA_NAMES: tuple[tuple[str, str], ...] = (
    (r"^model\.transformer\.wte\.", "model.embed_tokens."),
    (r"^model\.transformer\.ln_f\.", "model.norm."),
    (r"^model\.transformer\.ff_out\.", "lm_head."),
    (r"^model\.transformer\.blocks\.(\d+)\.attn_norm\.", r"model.layers.\1.input_layernorm."),
    (r"^model\.transformer\.blocks\.(\d+)\.ff_norm\.", r"model.layers.\1.post_attention_layernorm."),
    (r"^model\.transformer\.blocks\.(\d+)\.(q|k|v)_proj\.", r"model.layers.\1.self_attn.\2_proj."),
    (r"^model\.transformer\.blocks\.(\d+)\.attn_out\.", r"model.layers.\1.self_attn.o_proj."),
    (r"^model\.transformer\.blocks\.(\d+)\.ff_proj\.", r"model.layers.\1.mlp.gate_proj."),
    (r"^model\.transformer\.blocks\.(\d+)\.up_proj\.", r"model.layers.\1.mlp.up_proj."),
    (r"^model\.transformer\.blocks\.(\d+)\.ff_out\.", r"model.layers.\1.mlp.down_proj."),
)


def llada_to_llama_name(name: str) -> str:
    """One checkpoint tensor name -> SGLang Llama's name; ValueError for an unknown name."""
    for pattern, repl in LLADA_NAMES:
        new, n = re.subn(pattern, repl, name)
        if n:
            return new
    raise ValueError(f"unknown LLaDA checkpoint tensor {name!r}")


def llama_view(config):
    """A copy of the LLaDA config with the attributes SGLang's Llama reads."""
    view = copy.copy(config)
    view.intermediate_size = config.mlp_hidden_size or config.mlp_ratio * config.d_model
    view.hidden_act = config.activation_type
    view.vocab_size = config.embedding_size or config.vocab_size
    view.attention_bias = bool(config.include_bias or config.include_qkv_bias)
    return view


class LLaDAModelLM(LlamaForCausalLM):
    def __init__(self, config, quant_config=None, prefix: str = "") -> None:
        view = llama_view(config)
        super().__init__(view, quant_config=quant_config, prefix=prefix)
        make_bidirectional(self, view)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]):
        return super().load_weights((llada_to_llama_name(n), w) for n, w in weights)


EntryClass = LLaDAModelLM
