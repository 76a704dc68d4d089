"""LLaDA-MoE (`LLaDAMoEModelLM`) as a vLLM model: OLMoE-style layers from vLLM's parallel layers and FusedMoE.

Checkpoint names (unchanged): model.embed_tokens, model.layers.{i}.{input_layernorm,
self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm, post_attention_layernorm, mlp.*,
shared_expert.*}, model.norm, lm_head. A layer is dense (`mlp.{gate,up,down}_proj`,
`dense_intermediate_size`) where `moe_layer_freq[i] == 0`, else routed (`mlp.gate`,
`mlp.experts.{e}.*`, `mlp.expert_bias` when enabled) plus an ungated `shared_expert` that
sits beside `mlp`, not inside it.

Differences from vLLM's OLMoE, as in the original: the q/k norms act per head (size
head_dim); routing is softmax in float32 (plus `expert_bias` when enabled, which then also
weights the experts), top-k, NO renormalisation (`norm_topk_prob`,
`moe_router_score_function` and `routed_scaling_factor` are ignored by the original).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn
from vllm.compilation.decorators import support_torch_compile
from vllm.config import VllmConfig
from vllm.distributed import get_pp_group, get_tensor_model_parallel_world_size
from vllm.model_executor.layers.attention import Attention
from vllm.model_executor.layers.fused_moe import FusedMoEFactory
from vllm.model_executor.layers.layernorm import RMSNorm
from vllm.model_executor.layers.linear import QKVParallelLinear, ReplicatedLinear, RowParallelLinear
from vllm.model_executor.layers.logits_processor import LogitsProcessor
from vllm.model_executor.layers.rotary_embedding import get_rope
from vllm.model_executor.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding
from vllm.model_executor.models.interfaces import SupportsPP, SupportsQuant
from vllm.model_executor.models.llama import LlamaMLP
from vllm.model_executor.models.utils import (
    AutoWeightsLoader,
    PPMissingLayer,
    WeightsMapper,
    extract_layer_index,
    make_empty_intermediate_tensors_factory,
    make_layers,
    maybe_prefix,
)
from vllm.sequence import IntermediateTensors

from ...core.configs.llada_moe import LLaDAMoEConfig, as_moe_config
from ._stack import run_decoder_stack

def moe_config(config) -> LLaDAMoEConfig:
    """The served config as `LLaDAMoEConfig` (see `as_moe_config`)."""
    # NOTE: RoPE comes from vLLM's standardised `rope_parameters` of the served config
    return as_moe_config(config, skip=("rope_scaling",))


def _rope_parameters(served, config: LLaDAMoEConfig) -> dict[str, Any]:
    default = {"rope_type": "default", "rope_theta": config.rope_theta}
    params = dict(getattr(served, "rope_parameters", None) or default)
    params["partial_rotary_factor"] = config.partial_rotary_factor
    return params


class LLaDAMoEAttention(nn.Module):
    """q/k/v -> per-head RMSNorm (qk_layernorm) -> clip (clip_qkv) -> RoPE -> paged attention -> o_proj."""

    def __init__(self, config: LLaDAMoEConfig, rope: dict[str, Any], vllm_config: VllmConfig, prefix: str) -> None:
        super().__init__()
        tp = get_tensor_model_parallel_world_size()
        heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
        if heads % tp or (kv_heads % tp if kv_heads >= tp else tp % kv_heads):
            raise ValueError(f"{heads} query / {kv_heads} KV heads cannot be split over tensor-parallel size {tp}")
        self.head_dim = config.hidden_size // heads
        self.q_size = heads // tp * self.head_dim
        self.kv_size = max(1, kv_heads // tp) * self.head_dim
        self.clip = config.clip_qkv
        quant = vllm_config.quant_config
        self.qkv_proj = QKVParallelLinear(
            config.hidden_size, self.head_dim, heads, kv_heads, bias=config.attention_bias,
            quant_config=quant, prefix=f"{prefix}.qkv_proj",
        )
        self.o_proj = RowParallelLinear(
            heads * self.head_dim, config.hidden_size, bias=config.attention_bias,
            quant_config=quant, prefix=f"{prefix}.o_proj",
        )
        self.qk_norm = bool(config.qk_layernorm)
        if self.qk_norm:
            self.q_norm = RMSNorm(self.head_dim, eps=config.rms_norm_eps)
            self.k_norm = RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.rotary_emb = get_rope(
            self.head_dim, max_position=config.max_position_embeddings, rope_parameters=rope, is_neox_style=True
        )
        self.attn = Attention(
            heads // tp, self.head_dim, self.head_dim**-0.5, num_kv_heads=max(1, kv_heads // tp),
            cache_config=vllm_config.cache_config, quant_config=quant, prefix=f"{prefix}.attn",
        )

    def _per_head_norm(self, x: torch.Tensor, norm: RMSNorm) -> torch.Tensor:
        # [T, H * Dh] -> [T, H, Dh] -> norm over Dh -> [T, H * Dh]
        return norm(x.view(*x.shape[:-1], -1, self.head_dim)).view(x.shape)

    def forward(self, positions: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        qkv, _ = self.qkv_proj(hidden)
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        if self.qk_norm:
            q, k = self._per_head_norm(q, self.q_norm), self._per_head_norm(k, self.k_norm)
        if self.clip is not None:
            q, k, v = (t.clamp(-self.clip, self.clip) for t in (q, k, v))
        q, k = self.rotary_emb(positions, q, k)
        out, _ = self.o_proj(self.attn(q, k, v))
        return out


class LLaDAMoESparseMoeBlock(nn.Module):
    """Router `gate`, optional `expert_bias` [E] (float32), routed `experts` (FusedMoE)."""

    def __init__(self, config: LLaDAMoEConfig, vllm_config: VllmConfig, prefix: str) -> None:
        super().__init__()
        tp = get_tensor_model_parallel_world_size()
        if tp > config.num_experts:
            raise ValueError(f"tensor-parallel size {tp} exceeds num_experts {config.num_experts}")
        self.gate = ReplicatedLinear(
            config.hidden_size, config.num_experts, bias=False, quant_config=None, prefix=f"{prefix}.gate"
        )
        self.expert_bias: nn.Parameter | None = None
        if config.moe_router_enable_expert_bias:
            self.expert_bias = nn.Parameter(torch.zeros(config.num_experts, dtype=torch.float32), requires_grad=False)
        self.experts = FusedMoEFactory(
            num_experts=config.num_experts,
            top_k=config.num_experts_per_tok,
            hidden_size=config.hidden_size,
            intermediate_size=config.expert_intermediate_size,
            renormalize=False,
            quant_config=vllm_config.quant_config,
            prefix=f"{prefix}.experts",
            # without a bias, plain softmax top-k is vLLM's default routing
            custom_routing_function=self._biased_softmax_topk if self.expert_bias is not None else None,
        )

    def _biased_softmax_topk(
        self, hidden_states: torch.Tensor, gating_output: torch.Tensor, topk: int, renormalize: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[T, E] router logits -> (weights [T, k] float32, expert ids [T, k]); the bias moves both."""
        probs = torch.softmax(gating_output, dim=-1, dtype=torch.float32) + self.expert_bias
        weights, ids = torch.topk(probs, topk, dim=-1)
        return weights, ids

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits, _ = self.gate(hidden)  # [T, E]
        return self.experts(hidden_states=hidden, router_logits=logits)


class LLaDAMoEDecoderLayer(nn.Module):
    def __init__(self, config: LLaDAMoEConfig, rope: dict[str, Any], vllm_config: VllmConfig, prefix: str) -> None:
        super().__init__()
        quant = vllm_config.quant_config
        moe = config.moe_layer_freq[extract_layer_index(prefix)] != 0
        self.self_attn = LLaDAMoEAttention(config, rope, vllm_config, f"{prefix}.self_attn")
        if moe:
            self.mlp: nn.Module = LLaDAMoESparseMoeBlock(config, vllm_config, f"{prefix}.mlp")
        else:
            self.mlp = LlamaMLP(config.hidden_size, config.dense_intermediate_size, config.hidden_act,
                                quant_config=quant, prefix=f"{prefix}.mlp")
        shared = config.shared_expert_intermediate_size
        self.shared_expert = None
        if moe and shared is not None:
            self.shared_expert = LlamaMLP(config.hidden_size, shared, config.hidden_act,
                                          quant_config=quant, prefix=f"{prefix}.shared_expert")
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self, positions: torch.Tensor, hidden: torch.Tensor, residual: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            residual, hidden = hidden, self.input_layernorm(hidden)
        else:
            hidden, residual = self.input_layernorm(hidden, residual)
        hidden = self.self_attn(positions, hidden)
        hidden, residual = self.post_attention_layernorm(hidden, residual)
        out = self.mlp(hidden)
        if self.shared_expert is not None:
            out = out + self.shared_expert(hidden)
        return out, residual


# NOTE: explicit because postponed annotations hide the tensor types the decorator looks for
@support_torch_compile(
    dynamic_arg_dims={
        "input_ids": {0: "b"}, "positions": {-1: "b"}, "intermediate_tensors": {0: "b"}, "inputs_embeds": {0: "b"},
    }
)
class LLaDAMoEModel(nn.Module):
    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        served = vllm_config.model_config.hf_config
        self.config = config = moe_config(served)
        if config.hidden_act != "silu":
            raise ValueError(f"the vLLM LLaDA-MoE model supports hidden_act='silu' only, got {config.hidden_act!r}")
        if len(config.moe_layer_freq) != config.num_hidden_layers:
            raise ValueError(
                f"moe_layer_freq has {len(config.moe_layer_freq)} entries for {config.num_hidden_layers} layers"
            )
        rope = _rope_parameters(served, config)
        self.quant_config = vllm_config.quant_config
        if get_pp_group().is_first_rank or (config.tie_word_embeddings and get_pp_group().is_last_rank):
            self.embed_tokens = VocabParallelEmbedding(
                config.vocab_size, config.hidden_size, quant_config=self.quant_config, prefix=f"{prefix}.embed_tokens"
            )
        else:
            self.embed_tokens = PPMissingLayer()
        self.start_layer, self.end_layer, self.layers = make_layers(
            config.num_hidden_layers,
            lambda prefix: LLaDAMoEDecoderLayer(config, rope, vllm_config, prefix),
            prefix=f"{prefix}.layers",
        )
        last = get_pp_group().is_last_rank
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps) if last else PPMissingLayer()
        self.make_empty_intermediate_tensors = make_empty_intermediate_tensors_factory(
            ["hidden_states", "residual"], config.hidden_size
        )

    def embed_input_ids(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(input_ids)

    def forward(
        self,
        input_ids: torch.Tensor | None,
        positions: torch.Tensor,
        intermediate_tensors: IntermediateTensors | None,
        inputs_embeds: torch.Tensor | None = None,
    ) -> torch.Tensor | IntermediateTensors:
        return run_decoder_stack(self, input_ids, positions, intermediate_tensors, inputs_embeds)


class LLaDAMoEModelLM(nn.Module, SupportsPP, SupportsQuant):
    # q/k/v and the dense / shared gate+up are packed; experts are loaded by FusedMoE itself
    hf_to_vllm_mapper = WeightsMapper(
        orig_to_new_stacked={
            ".q_proj": (".qkv_proj", "q"),
            ".k_proj": (".qkv_proj", "k"),
            ".v_proj": (".qkv_proj", "v"),
            ".mlp.gate_proj": (".mlp.gate_up_proj", 0),
            ".mlp.up_proj": (".mlp.gate_up_proj", 1),
            ".shared_expert.gate_proj": (".shared_expert.gate_up_proj", 0),
            ".shared_expert.up_proj": (".shared_expert.gate_up_proj", 1),
        }
    )
    packed_modules_mapping = {
        "qkv_proj": ["q_proj", "k_proj", "v_proj"],
        "gate_up_proj": ["gate_proj", "up_proj"],
    }

    def __init__(self, *, vllm_config: VllmConfig, prefix: str = "") -> None:
        super().__init__()
        self.model = LLaDAMoEModel(vllm_config=vllm_config, prefix=maybe_prefix(prefix, "model"))
        self.config = config = self.model.config
        if get_pp_group().is_last_rank:
            self.lm_head = ParallelLMHead(
                config.vocab_size, config.hidden_size, quant_config=vllm_config.quant_config,
                prefix=maybe_prefix(prefix, "lm_head"),
            )
            if config.tie_word_embeddings:
                self.lm_head = self.lm_head.tie_weights(self.model.embed_tokens)
            self.logits_processor = LogitsProcessor(config.vocab_size)
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
        return self.logits_processor(self.lm_head, hidden_states)  # [T, V]

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        return AutoWeightsLoader(self).load_weights(weights, mapper=self.hf_to_vllm_mapper)
