"""LLaDA-8B (`LLaDAModelLM`) as a vLLM model: vLLM's Llama decoder layers under LLaDA's names.

The released LLaDA is OLMo-shaped but computes exactly a Llama block (RMSNorm, RoPE, SwiGLU),
so each block is vLLM's `LlamaDecoderLayer`, built from a Llama view of the LLaDA config
(`llama_view`). The checkpoint names `model.transformer.blocks.{i}.{q,k,v}_proj / attn_out /
ff_proj (gate) / up_proj / ff_out (down) / attn_norm / ff_norm` are renamed onto the Llama
tree by `hf_to_vllm_mapper` and packed into `qkv_proj` / `gate_up_proj` (quantization
configs and LoRA see the same mapping); `model.transformer.ff_out` is the LM head.

The embedding and head have `embedding_size` rows (the table may be padded past the
vocabulary); logits are cut to `vocab_size`, the ids a tokenizer can produce.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable

import torch
from torch import nn
from transformers import LlamaConfig
from vllm.compilation.decorators import support_torch_compile
from vllm.config import VllmConfig
from vllm.distributed import get_pp_group
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding
from vllm.model_executor.models.interfaces import SupportsLoRA, SupportsPP, SupportsQuant
from vllm.model_executor.models.llama import LlamaDecoderLayer
from vllm.model_executor.models.utils import (
    AutoWeightsLoader,
    PPMissingLayer,
    WeightsMapper,
    make_empty_intermediate_tensors_factory,
    make_layers,
    maybe_prefix,
)
from vllm.sequence import IntermediateTensors

from ._stack import run_decoder_stack

# config key -> the only value the Llama layers compute (what every released LLaDA uses)
_REQUIRED: dict[str, object] = {
    "block_type": "llama",
    "layer_norm_type": "rms",
    "layer_norm_with_affine": True,
    "rope": True,
    "alibi": False,
    "attention_layer_norm": False,
    "block_group_size": 1,
    "activation_type": "silu",
}

_BLOCK = r"^model\.transformer\.blocks\.(\d+)\."


def llama_view(config) -> LlamaConfig:
    """The Llama config whose decoder layer computes one LLaDA block; ValueError names what cannot."""
    for key, want in _REQUIRED.items():
        got = getattr(config, key, want)
        if got != want:
            raise ValueError(f"the vLLM LLaDA model supports {key}={want!r} only, got {key}={got!r}")
    norm_bias = config.bias_for_layer_norm
    if (config.include_bias if norm_bias is None else norm_bias):
        raise ValueError(f"the vLLM LLaDA model has no norm biases: got bias_for_layer_norm={norm_bias!r} "
                         f"with include_bias={config.include_bias!r}")
    return LlamaConfig(
        hidden_size=config.d_model,
        intermediate_size=config.mlp_hidden_size or config.mlp_ratio * config.d_model,
        num_attention_heads=config.n_heads,
        num_key_value_heads=config.effective_n_kv_heads,
        num_hidden_layers=config.n_layers,
        hidden_act=config.activation_type,
        max_position_embeddings=config.max_sequence_length,
        rms_norm_eps=config.rms_norm_eps,
        # vLLM standardises `rope_parameters` onto the served config; a bare LLaDAConfig has none
        rope_parameters=dict(
            getattr(config, "rope_parameters", None) or {"rope_type": "default", "rope_theta": config.rope_theta}
        ),
        # attn_out and the MLP carry include_bias; q/k/v also include_qkv_bias
        attention_bias=bool(config.include_bias),
        qkv_bias=bool(config.include_bias or config.include_qkv_bias),
        mlp_bias=bool(config.include_bias),
        vocab_size=config.embedding_size or config.vocab_size,
    )


# NOTE: explicit because postponed annotations hide the tensor types the decorator looks for
@support_torch_compile(
    dynamic_arg_dims={
        "input_ids": {0: "b"}, "positions": {-1: "b"}, "intermediate_tensors": {0: "b"}, "inputs_embeds": {0: "b"},
    }
)
class LLaDAModel(nn.Module):
    """Embedding (x sqrt(d_model) with `input_emb_norm`), Llama blocks, final norm."""

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = llama = llama_view(config)
        self.quant_config = vllm_config.quant_config
        self.emb_scale = math.sqrt(config.d_model) if config.input_emb_norm else None
        if get_pp_group().is_first_rank or (config.weight_tying and get_pp_group().is_last_rank):
            self.embed_tokens = VocabParallelEmbedding(
                llama.vocab_size, llama.hidden_size, quant_config=self.quant_config,
                prefix=f"{prefix}.embed_tokens",
            )
        else:
            self.embed_tokens = PPMissingLayer()
        self.start_layer, self.end_layer, self.layers = make_layers(
            llama.num_hidden_layers,
            lambda prefix: LlamaDecoderLayer(vllm_config=vllm_config, prefix=prefix, config=llama),
            prefix=f"{prefix}.layers",
        )
        if get_pp_group().is_last_rank:
            self.norm = RMSNorm(llama.hidden_size, eps=llama.rms_norm_eps)
        else:
            self.norm = PPMissingLayer()
        self.make_empty_intermediate_tensors = make_empty_intermediate_tensors_factory(
            ["hidden_states", "residual"], llama.hidden_size
        )

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(input_ids)  # [T, d_model]
        return x * self.emb_scale if self.emb_scale is not None else x

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor | IntermediateTensors:
        return run_decoder_stack(self, input_ids, positions, intermediate_tensors, inputs_embeds)


class LLaDAModelLM(nn.Module, SupportsPP, SupportsLoRA, SupportsQuant):
    # checkpoint name -> Llama tree name; then q/k/v and gate/up are packed
    hf_to_vllm_mapper = WeightsMapper(
        orig_to_new_regex={
            re.compile(r"^model\.transformer\.wte\."): "model.embed_tokens.",
            re.compile(r"^model\.transformer\.ln_f\."): "model.norm.",
            re.compile(r"^model\.transformer\.ff_out\."): "lm_head.",
            re.compile(_BLOCK + r"attn_norm\."): r"model.layers.\1.input_layernorm.",
            re.compile(_BLOCK + r"ff_norm\."): r"model.layers.\1.post_attention_layernorm.",
            re.compile(_BLOCK + r"([qkv])_proj\."): r"model.layers.\1.self_attn.\2_proj.",
            re.compile(_BLOCK + r"attn_out\."): r"model.layers.\1.self_attn.o_proj.",
            re.compile(_BLOCK + r"ff_proj\."): r"model.layers.\1.mlp.gate_proj.",
            re.compile(_BLOCK + r"up_proj\."): r"model.layers.\1.mlp.up_proj.",
            re.compile(_BLOCK + r"ff_out\."): r"model.layers.\1.mlp.down_proj.",
        },
        orig_to_new_stacked={
            ".q_proj": (".qkv_proj", "q"),
            ".k_proj": (".qkv_proj", "k"),
            ".v_proj": (".qkv_proj", "v"),
            ".gate_proj": (".gate_up_proj", 0),
            ".up_proj": (".gate_up_proj", 1),
        },
    )
    packed_modules_mapping = {
        "qkv_proj": ["q_proj", "k_proj", "v_proj"],
        "gate_up_proj": ["gate_proj", "up_proj"],
    }
    embedding_modules = {"embed_tokens": "input_embeddings", "lm_head": "output_embeddings"}

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        config = vllm_config.model_config.hf_config
        self.config = config
        self.model = LLaDAModel(vllm_config=vllm_config, prefix=maybe_prefix(prefix, "model"))
        rows = self.model.config.vocab_size  # embedding_size: the padded table
        if get_pp_group().is_last_rank:
            self.lm_head = ParallelLMHead(
                rows, config.d_model, quant_config=vllm_config.quant_config, prefix=maybe_prefix(prefix, "lm_head"),
                bias=bool(config.include_bias),
            )
            if config.weight_tying:
                # NOTE: a tied LLaDA has no head tensor at all: it projects with `wte`
                self.lm_head = self.lm_head.tie_weights(self.model.embed_tokens)
            scale = 1 / math.sqrt(config.d_model) if config.scale_logits else 1.0
            self.logits_processor = LogitsProcessor(rows, org_vocab_size=config.vocab_size, scale=scale)
        else:
            self.lm_head = PPMissingLayer()
        self.make_empty_intermediate_tensors = self.model.make_empty_intermediate_tensors

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.embed_input_ids(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None = None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor | IntermediateTensors:
        return self.model(input_ids, positions, intermediate_tensors, inputs_embeds)

    def compute_logits(self, hidden_states: torch.Tensor) -> torch.Tensor | None:
        # NOTE: vLLM's head applies no bias of its own; `include_bias` gives LLaDA's head one
        bias = getattr(self.lm_head, "bias", None)
        return self.logits_processor(self.lm_head, hidden_states, bias)  # [T, vocab_size]

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        return AutoWeightsLoader(self).load_weights(weights, mapper=self.hf_to_vllm_mapper)
