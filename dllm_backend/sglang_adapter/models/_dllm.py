"""What turns an SGLang autoregressive model into a dLLM one: bidirectional attention over
prefix + block, full logits of every block position, and the logit shift of shifted families."""
from __future__ import annotations

import torch
from torch import nn

from sglang.srt.layers.logits_processor import LogitsProcessor
from sglang.srt.layers.radix_attention import AttentionType, RadixAttention


def make_bidirectional(model: nn.Module, config) -> None:
    """Every RadixAttention attends ENCODER_ONLY (prefix + whole block, as SGLang's SDAR and
    LLaDA2 models do); the logits processor returns every position's logits."""
    for module in model.modules():
        if isinstance(module, RadixAttention):
            module.attn_type = AttentionType.ENCODER_ONLY
    model.logits_processor = LogitsProcessor(config, return_full_logits=True)


def shift_block_logits(full_logits: torch.Tensor, batch_size: int) -> torch.Tensor:
    """[bs * B, V] raw logits -> logits predicting each block position: position i reads
    position i - 1 of its block. NOTE: the block's first position keeps its own logits
    (the previous token's hidden state is not recomputed by a block forward); the references
    read it from the last prefix position, so this is an approximation for that position."""
    logits = full_logits.view(batch_size, -1, full_logits.shape[-1])  # [bs, B, V]
    shifted = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
    return shifted.reshape(full_logits.shape)
