"""Reference generator for full-attention dLLMs (LLaDA, LLaDA-MoE, Dream): semi-AR blocks on one canvas.

The canvas is the prompt followed by exactly `max_tokens` masks. Blocks of
`request.block_size` are aligned to the generation start (the last one is shorter when
`max_tokens` is not a multiple of the block) and denoised left to right, each by
`denoise_block` with the request's policy; `decode.steps` is the number of steps *per
block* (LLaDA's `steps` argument is the total over all blocks). Dream's default block is
the whole canvas (`validate_request` turns the family's 0 into `max_tokens`), which makes
this LLaDA's `generate` for LLaDA / LLaDA-MoE and Dream's `diffusion_generate` for Dream.

Stopping: after each block, if it committed a stop id (`family.eos_ids`) the request ends
and the output is cut after the first stop id. This changes none of the kept tokens: while
a block is denoised every later position is still a mask, so the blocks up to the stop
are decoded exactly as they would be if generation ran to the end of the canvas.

`request.cache_mode` picks how a step's logits are computed (see `_full_canvas`): `exact`
recomputes the whole canvas every step; `prefix` and `dual` are Fast-dLLM's KV-reuse
approximations.
"""
from __future__ import annotations

from typing import Literal

import torch

from ... import policies
from ..loading import LoadedModel
from . import GenerationRequest, GenerationResult
from ._full_canvas import CANVAS_FORWARDS
from .common import LoopStats, denoise_block


def _check(request: GenerationRequest) -> int:
    """Generator-specific checks on a validated request; returns the block size."""
    if request.decode.cfg_scale > 0 and request.cache_mode != "exact":
        raise ValueError(
            f"cfg_scale {request.decode.cfg_scale} needs cache_mode 'exact' (got "
            f"{request.cache_mode!r}): the unconditional pass has no cached counterpart"
        )
    if request.block_size is None:
        raise ValueError("block_size is None: pass the request through validate_request first")
    return request.block_size


def _cut_at_stop(
    generated: list[int], eos_ids: tuple[int, ...]
) -> tuple[list[int], Literal["stop", "length"]]:
    stops = set(eos_ids)
    for i, tok in enumerate(generated):
        if tok in stops:
            return generated[: i + 1], "stop"
    return generated, "length"


@torch.inference_mode()
def generate(loaded: LoadedModel, request: GenerationRequest) -> GenerationResult:
    """Denoises prompt + `max_tokens` masks block by block; `request` is already validated."""
    block = _check(request)
    fam = loaded.family
    model = loaded.model
    device = next(model.parameters()).device
    prompt_len = len(request.prompt_ids)
    total = prompt_len + request.max_tokens

    canvas = torch.full((1, total), fam.mask_id, dtype=torch.long, device=device)  # [1, T]
    canvas[0, :prompt_len] = torch.tensor(request.prompt_ids, dtype=torch.long, device=device)
    eos = torch.tensor(fam.eos_ids, dtype=torch.long, device=device)

    stats = LoopStats()
    params = policies.ParamBatch.from_configs([request.decode], fam.eos_ids, device)
    runner = CANVAS_FORWARDS.get(request.cache_mode)(
        model, canvas, prompt_len, fam.spec.logit_shift, fam.mask_id, request.decode.cfg_scale, stats
    )
    for start in range(prompt_len, total, block):
        end = min(start + block, total)
        tokens = canvas[:, start:end].clone()  # [1, B]
        editable = torch.ones_like(tokens, dtype=torch.bool)
        tokens = denoise_block(
            runner.block(start, end), tokens, editable, request.decode, params, fam.mask_id, stats
        )
        canvas[:, start:end] = tokens
        if bool(torch.isin(tokens, eos).any()):
            break

    token_ids, reason = _cut_at_stop(canvas[0, prompt_len:].tolist(), fam.eos_ids)
    return GenerationResult(
        token_ids=token_ids,
        finish_reason=reason,
        nfe=stats.nfe,
        steps=stats.steps,
        tokens_per_step=stats.tokens_per_step,
    )
