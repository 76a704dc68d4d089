"""LLaDA-MoE (`LLaDAMoEModelLM`) on SGLang: OLMoE-style layers from SGLang's parallel layers and FusedMoE.

Checkpoint names (unchanged): model.embed_tokens, model.layers.{i}.{input_layernorm,
self_attn.{q,k,v,o}_proj, self_attn.{q,k}_norm, post_attention_layernorm, mlp.*,
shared_expert.*}, model.norm, lm_head. A layer is dense (`mlp.{gate,up,down}_proj`) where
`moe_layer_freq[i] == 0`, else routed (`mlp.gate`, `mlp.experts.{e}.*`, `mlp.expert_bias`
when enabled) plus an ungated `shared_expert` beside `mlp`. `checkpoint_target` maps a
checkpoint name to the parameter (and shard / expert) it loads into.

Differences from SGLang's OLMoE, as in the original: q/k norms act per head (size head_dim),
optional qkv clipping, partial rotary; routing is float32 softmax (plus `expert_bias` when
enabled, which then also weights the experts), top-k, NO renormalisation.
"""
from __future__ import annotations

import re
from typing import Iterable, NamedTuple

import torch
from torch import nn

from sglang.srt.layers.layernorm import RMSNorm
from sglang.srt.layers.linear import QKVParallelLinear, ReplicatedLinear, RowParallelLinear
from sglang.srt.layers.moe.fused_moe_triton import FusedMoE
from sglang.srt.layers.moe.topk import TopK
from sglang.srt.layers.radix_attention import RadixAttention
from sglang.srt.layers.rotary_embedding import get_rope
from sglang.srt.layers.vocab_parallel_embedding import ParallelLMHead, VocabParallelEmbedding
from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.model_loader.weight_utils import default_weight_loader
from sglang.srt.models.llama import LlamaMLP
from sglang.srt.runtime_context import get_parallel
from sglang.srt.utils import add_prefix, make_layers

from ...core.configs.llada_moe import LLaDAMoEConfig, as_moe_config
from ._dllm import make_bidirectional

def moe_config(config) -> LLaDAMoEConfig:
    """The served config as `LLaDAMoEConfig` (see `core.configs.llada_moe.as_moe_config`)."""
    return as_moe_config(config)


class Target(NamedTuple):
    """Where one checkpoint tensor loads: parameter name, shard id (q/k/v, 0/1, w1/w2/w3), expert id."""

    param: str
    shard: str | int | None = None
    expert: int | None = None


_STACKED: tuple[tuple[str, str, str | int], ...] = (
    (r"\.self_attn\.q_proj\.", ".self_attn.qkv_proj.", "q"),
    (r"\.self_attn\.k_proj\.", ".self_attn.qkv_proj.", "k"),
    (r"\.self_attn\.v_proj\.", ".self_attn.qkv_proj.", "v"),
    (r"\.(mlp|shared_expert)\.gate_proj\.", r".\1.gate_up_proj.", 0),
    (r"\.(mlp|shared_expert)\.up_proj\.", r".\1.gate_up_proj.", 1),
)
# FusedMoE keeps gate+up of every expert in `w13_weight` [E, 2I, D] and down in `w2_weight` [E, D, I]
_EXPERT = re.compile(r"^(.*\.mlp\.experts)\.(\d+)\.(gate|up|down)_proj\.weight$")
_EXPERT_SHARD = {"gate": ("w13", "w1"), "up": ("w13", "w3"), "down": ("w2", "w2")}


def checkpoint_target(name: str) -> Target:
    """Checkpoint tensor name -> the parameter it loads into (names of this module's tree)."""
    hit = _EXPERT.match(name)
    if hit:
        param, shard = _EXPERT_SHARD[hit.group(3)]
        return Target(f"{hit.group(1)}.{param}_weight", shard, int(hit.group(2)))
    for pattern, repl, shard in _STACKED:
        new, n = re.subn(pattern, repl, name)
        if n:
            return Target(new, shard)
    return Target(name)


class LLaDAMoEAttention(nn.Module):
    """q/k/v -> per-head RMSNorm (qk_layernorm) -> clip (clip_qkv) -> RoPE -> RadixAttention -> o_proj."""

    def __init__(self, config: LLaDAMoEConfig, layer_id: int, quant_config, prefix: str) -> None:
        super().__init__()
        tp = get_parallel().tp_size
        heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
        if heads % tp or (kv_heads % tp if kv_heads >= tp else tp % kv_heads):
            raise ValueError(f"{heads} query / {kv_heads} KV heads cannot be split over tensor-parallel size {tp}")
        self.head_dim = config.hidden_size // heads
        self.q_size = heads // tp * self.head_dim
        self.kv_size = max(1, kv_heads // tp) * self.head_dim
        self.clip = config.clip_qkv
        self.qkv_proj = QKVParallelLinear(
            config.hidden_size, self.head_dim, heads, kv_heads, bias=config.attention_bias,
            quant_config=quant_config, prefix=add_prefix("qkv_proj", prefix),
        )
        self.o_proj = RowParallelLinear(
            heads * self.head_dim, config.hidden_size, bias=config.attention_bias,
            quant_config=quant_config, prefix=add_prefix("o_proj", prefix),
        )
        self.qk_norm = bool(config.qk_layernorm)
        if self.qk_norm:
            self.q_norm = RMSNorm(self.head_dim, eps=config.rms_norm_eps)
            self.k_norm = RMSNorm(self.head_dim, eps=config.rms_norm_eps)
        self.rotary_emb = get_rope(
            self.head_dim, rotary_dim=self.head_dim, max_position=config.max_position_embeddings,
            base=config.rope_theta, is_neox_style=True, partial_rotary_factor=config.partial_rotary_factor,
        )
        self.attn = RadixAttention(
            heads // tp, self.head_dim, self.head_dim**-0.5, num_kv_heads=max(1, kv_heads // tp),
            layer_id=layer_id, quant_config=quant_config, prefix=add_prefix("attn", prefix),
        )

    def _per_head_norm(self, x: torch.Tensor, norm: RMSNorm) -> torch.Tensor:
        # [T, H * Dh] -> [T * H, Dh] -> norm over Dh -> [T, H * Dh]
        return norm(x.reshape(-1, self.head_dim)).view(x.shape)

    def forward(self, positions: torch.Tensor, hidden: torch.Tensor, forward_batch: ForwardBatch) -> torch.Tensor:
        qkv, _ = self.qkv_proj(hidden)
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        if self.qk_norm:
            q, k = self._per_head_norm(q, self.q_norm), self._per_head_norm(k, self.k_norm)
        if self.clip is not None:
            q, k, v = (t.clamp(-self.clip, self.clip) for t in (q, k, v))
        q, k = self.rotary_emb(positions, q, k)
        out, _ = self.o_proj(self.attn(q, k, v.contiguous(), forward_batch))
        return out


class LLaDAMoESparseMoeBlock(nn.Module):
    """Router `gate`, optional `expert_bias` [E] (float32), routed `experts` (FusedMoE)."""

    def __init__(self, config: LLaDAMoEConfig, layer_id: int, quant_config, prefix: str) -> None:
        super().__init__()
        self.gate = ReplicatedLinear(
            config.hidden_size, config.num_experts, bias=False, quant_config=None, prefix=add_prefix("gate", prefix)
        )
        self.expert_bias: nn.Parameter | None = None
        if config.moe_router_enable_expert_bias:
            self.expert_bias = nn.Parameter(torch.zeros(config.num_experts, dtype=torch.float32), requires_grad=False)
        # NOTE: SGLang's `correction_bias` moves only the selection, not the weights, so a
        # biased router goes through our own routing function; unbiased is SGLang's default.
        self.topk = TopK(
            top_k=config.num_experts_per_tok, layer_id=layer_id, renormalize=False,
            custom_routing_function=self.biased_softmax_topk if self.expert_bias is not None else None,
        )
        self.experts = FusedMoE(
            num_experts=config.num_experts, hidden_size=config.hidden_size,
            intermediate_size=config.expert_intermediate_size, reduce_results=True,
            quant_config=quant_config, layer_id=layer_id, prefix=add_prefix("experts", prefix),
        )
        self.topk.bind_runner_backend(self.experts.runner_backend)

    def biased_softmax_topk(
        self, hidden_states: torch.Tensor, gating_output: torch.Tensor, topk: int, renormalize: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[T, E] router logits -> (weights [T, k] float32, expert ids [T, k] int32); the bias moves both."""
        probs = torch.softmax(gating_output, dim=-1, dtype=torch.float32) + self.expert_bias
        weights, ids = torch.topk(probs, topk, dim=-1)
        return weights, ids.to(torch.int32)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        logits, _ = self.gate(hidden)  # [T, E]
        return self.experts(hidden, self.topk(hidden, logits))


class LLaDAMoEDecoderLayer(nn.Module):
    def __init__(self, config: LLaDAMoEConfig, layer_id: int, quant_config, prefix: str) -> None:
        super().__init__()
        moe = config.moe_layer_freq[layer_id] != 0
        self.self_attn = LLaDAMoEAttention(config, layer_id, quant_config, add_prefix("self_attn", prefix))
        if moe:
            self.mlp: nn.Module = LLaDAMoESparseMoeBlock(config, layer_id, quant_config, add_prefix("mlp", prefix))
        else:
            self.mlp = LlamaMLP(config.hidden_size, config.dense_intermediate_size, config.hidden_act,
                                quant_config=quant_config, prefix=add_prefix("mlp", prefix))
        shared = config.shared_expert_intermediate_size
        self.shared_expert = None
        if moe and shared is not None:
            self.shared_expert = LlamaMLP(config.hidden_size, shared, config.hidden_act,
                                          quant_config=quant_config, prefix=add_prefix("shared_expert", prefix))
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(
        self, positions: torch.Tensor, hidden: torch.Tensor, forward_batch: ForwardBatch, residual: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if residual is None:
            residual, hidden = hidden, self.input_layernorm(hidden)
        else:
            hidden, residual = self.input_layernorm(hidden, residual)
        hidden = self.self_attn(positions, hidden, forward_batch)
        hidden, residual = self.post_attention_layernorm(hidden, residual)
        out = self.mlp(hidden)
        if self.shared_expert is not None:
            out = out + self.shared_expert(hidden)
        return out, residual


class LLaDAMoEModel(nn.Module):
    def __init__(self, config: LLaDAMoEConfig, quant_config, prefix: str) -> None:
        super().__init__()
        self.embed_tokens = VocabParallelEmbedding(
            config.vocab_size, config.hidden_size, prefix=add_prefix("embed_tokens", prefix)
        )
        self.layers = make_layers(
            config.num_hidden_layers,
            lambda idx, prefix: LLaDAMoEDecoderLayer(config, idx, quant_config, prefix),
            prefix=add_prefix("layers", prefix),
        )
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, input_ids, positions, forward_batch: ForwardBatch, input_embeds=None) -> torch.Tensor:
        hidden = self.embed_tokens(input_ids) if input_embeds is None else input_embeds  # [T, D]
        residual = None
        for layer in self.layers:
            hidden, residual = layer(positions, hidden, forward_batch, residual)
        hidden, _ = self.norm(hidden, residual)
        return hidden


class LLaDAMoEModelLM(nn.Module):
    fall_back_to_pt_during_load = False

    def __init__(self, config, quant_config=None, prefix: str = "") -> None:
        super().__init__()
        self.config = config = moe_config(config)
        if config.hidden_act != "silu":
            raise ValueError(f"the SGLang LLaDA-MoE model supports hidden_act='silu' only, got {config.hidden_act!r}")
        if config.rope_scaling is not None:
            raise ValueError(f"the SGLang LLaDA-MoE model supports default RoPE only, got {config.rope_scaling!r}")
        if len(config.moe_layer_freq) != config.num_hidden_layers:
            raise ValueError(
                f"moe_layer_freq has {len(config.moe_layer_freq)} entries for {config.num_hidden_layers} layers"
            )
        self.quant_config = quant_config
        self.model = LLaDAMoEModel(config, quant_config, add_prefix("model", prefix))
        self.lm_head = ParallelLMHead(
            config.vocab_size, config.hidden_size, quant_config=quant_config, prefix=add_prefix("lm_head", prefix)
        )
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        make_bidirectional(self, config)

    def forward(self, input_ids, positions, forward_batch: ForwardBatch, input_embeds=None, **_kwargs):
        hidden = self.model(input_ids, positions, forward_batch, input_embeds)
        return self.logits_processor(input_ids, hidden, self.lm_head, forward_batch)

    def load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> set[str]:
        """Loads checkpoint tensors by `checkpoint_target`; returns the names of the parameters loaded."""
        params = dict(self.named_parameters())
        loaded: set[str] = set()
        for name, tensor in weights:
            if "rotary_emb.inv_freq" in name or (self.config.tie_word_embeddings and name == "lm_head.weight"):
                continue
            target = checkpoint_target(name)
            if target.param not in params:
                raise ValueError(f"checkpoint tensor {name!r} has no parameter {target.param!r} in LLaDAMoEModelLM")
            param = params[target.param]
            loader = getattr(param, "weight_loader", default_weight_loader)
            if target.expert is not None:
                loader(param, tensor, target.param, shard_id=target.shard, expert_id=target.expert)
            elif target.shard is not None:
                loader(param, tensor, target.shard)
            else:
                loader(param, tensor)
            loaded.add(target.param)
        return loaded


EntryClass = LLaDAMoEModelLM
