"""Reference generator for block-causal dLLMs (SDAR, SDAR-MoE, TraDo, LLaDA2.x): one block at a time, KV per block.

The canvas is the prompt followed by masks up to the end of the block holding position
prompt_len + max_tokens - 1, so the last block is always a full block (SDAR's and
LLaDA2's `num_blocks = ceil((prompt + gen) / block)`). Blocks are aligned to absolute
position 0; the prompt's last partial block is decoded together with the first generated
positions, whose prompt positions are not editable.

`generate` follows SDAR's `block_diffusion_generate`: the complete prompt blocks are
prefilled once with a block-causal mask and their KV appended; each denoising step
forwards only the current block against the read-only cache; when the policy says the
block is done, one more forward of its final tokens appends its KV (the commit forward,
counted in nfe, run for every decoded block as SDAR does). `generate_recompute` follows
LLaDA2's `generate`: every step recomputes everything from position 0 with a block-causal
mask and no cache, and needs no commit forward. For greedy decoding both give the same
tokens (tests prove it).

Stopping: after each block, if a generated position holds a stop id
(`family.eos_ids`) the request ends. The output is the generated part cut at
`max_tokens`, then after its first stop id (LLaDA2 cuts at `gen_length` then at EOS; SDAR
returns the block-padded canvas and leaves the cut to the caller).

Fixed-step schedules spread the whole block length over the steps, as SDAR's and
LLaDA2's `get_num_transfer_tokens(block_length, steps)` do, also on the prompt's partial
block (where a step's quota may exceed the masks left: it then commits what is left).
"""
from __future__ import annotations

import torch

from ... import policies
from ..loading import LoadedModel
from . import GenerationRequest, GenerationResult
from ._block_common import (
    BlockCausalForward, CachedForward, LogitsFn, RecomputeForward, cut_at_stop, padded_length,
)
from .common import LoopStats, denoise_block


@torch.inference_mode()
def generate(loaded: LoadedModel, request: GenerationRequest) -> GenerationResult:
    """KV-cached block diffusion (SDAR's loop); `request` is already validated."""
    return _generate(loaded, request, CachedForward)


@torch.inference_mode()
def generate_recompute(loaded: LoadedModel, request: GenerationRequest) -> GenerationResult:
    """Same decoding, each step a full block-causal forward from position 0 (LLaDA2's loop)."""
    return _generate(loaded, request, RecomputeForward)


def _generate(
    loaded: LoadedModel, request: GenerationRequest, forward_cls: type[BlockCausalForward]
) -> GenerationResult:
    if request.block_size is None:
        raise ValueError("block_size is None: pass the request through validate_request first")
    block = request.block_size
    fam = loaded.family
    device = next(loaded.model.parameters()).device
    prompt_len = len(request.prompt_ids)
    total = padded_length(prompt_len, request.max_tokens, block)

    canvas = torch.full((1, total), fam.mask_id, dtype=torch.long, device=device)  # [1, T]
    canvas[0, :prompt_len] = torch.tensor(request.prompt_ids, dtype=torch.long, device=device)
    positions = torch.arange(total, device=device)[None]  # [1, T]
    eos = torch.tensor(fam.eos_ids, dtype=torch.long, device=device)

    stats = LoopStats()
    params = policies.ParamBatch.from_configs([request.decode], fam.eos_ids, device)
    forward = forward_cls(loaded.model, canvas, block, stats)
    first = prompt_len // block
    forward.prefill(first * block, need_logits=False)
    for b in range(first, total // block):
        lo, hi = b * block, (b + 1) * block
        tokens = canvas[:, lo:hi].clone()  # [1, B]
        editable = positions[:, lo:hi] >= prompt_len  # [1, B]: prompt positions stay
        tokens = denoise_block(
            _block_logits_fn(forward, b), tokens, editable, request.decode, params, fam.mask_id, stats,
            schedule_len=block,
        )
        canvas[:, lo:hi] = tokens
        forward.commit(b, need_logits=False)
        if bool(torch.isin(canvas[0, prompt_len:hi], eos).any()):
            break

    generated = canvas[0, prompt_len : prompt_len + request.max_tokens].tolist()
    token_ids, reason = cut_at_stop(generated, fam.eos_ids)
    return GenerationResult(
        token_ids=token_ids, finish_reason=reason, nfe=stats.nfe, steps=stats.steps,
        tokens_per_step=stats.tokens_per_step,
    )


def _block_logits_fn(forward: BlockCausalForward, b: int) -> LogitsFn:
    """The `denoise_block` logits_fn of block b: writes the block's tokens, forwards, returns [1, B, V]."""
    lo, hi = b * forward.block, (b + 1) * forward.block

    def logits_fn(block_tokens: torch.Tensor) -> torch.Tensor:
        forward.canvas[:, lo:hi] = block_tokens
        return forward.block_logits(b)

    return logits_fn
