"""The pipeline-parallel decoder loop shared by our hand-built vLLM backbones (LLaDA, LLaDA-MoE).

The same steps as vLLM's own Llama / Qwen backbones: embed on the first PP rank, run this
rank's layers with a fused residual, hand hidden states + residual to the next rank, norm
on the last.
"""
from __future__ import annotations

from itertools import islice

import torch
from torch import nn
from vllm.distributed import get_pp_group
from vllm.sequence import IntermediateTensors


def run_decoder_stack(
    backbone: nn.Module,
    input_ids: torch.Tensor | None,
    positions: torch.Tensor,
    intermediate_tensors: IntermediateTensors | None,
    inputs_embeds: torch.Tensor | None,
) -> torch.Tensor | IntermediateTensors:
    """backbone needs `embed_input_ids`, `layers`, `start_layer`, `end_layer`, `norm`.

    Each layer maps (positions, hidden [T, D], residual | None) -> (hidden, residual).
    """
    if get_pp_group().is_first_rank:
        hidden = inputs_embeds if inputs_embeds is not None else backbone.embed_input_ids(input_ids)
        residual = None
    else:
        hidden, residual = intermediate_tensors["hidden_states"], intermediate_tensors["residual"]
    for layer in islice(backbone.layers, backbone.start_layer, backbone.end_layer):
        hidden, residual = layer(positions, hidden, residual)
    if not get_pp_group().is_last_rank:
        return IntermediateTensors({"hidden_states": hidden, "residual": residual})
    hidden, _ = backbone.norm(hidden, residual)
    return hidden
