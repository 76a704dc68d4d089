"""Training losses: LLaDA's masked diffusion, SDAR / BD3-LM block diffusion, next-token.

Each objective: (model, batch, mask_id, block_size, generator) -> scalar loss. The reference
networks take an explicit attention mask (None = bidirectional), so the objective decides
what each position sees.
"""
from __future__ import annotations

from typing import Callable

import math

import torch
import torch.nn.functional as F

from ..core.reference.base import ReferenceModel
from ..core.registry import Registry
from .data import Batch

Objective = Callable[[ReferenceModel, Batch, int, int, torch.Generator], torch.Tensor]
OBJECTIVES: Registry[Objective] = Registry("training objective")

EPS = 1e-3  # LLaDA's floor on the mask probability, which bounds the 1/t weight


def noise_levels(shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """t ~ U(0, 1) for each entry, stratified (MDLM's low-discrepancy sampler): one uniform
    offset plus evenly spaced strata, so every batch covers all noise levels evenly (lower
    gradient variance than independent draws, same marginal)."""
    n = math.prod(shape)
    u = torch.rand(1, generator=gen)
    strata = torch.randperm(n, generator=gen).to(torch.float32)
    return ((u + strata) / n).reshape(shape)


def _positions(r: int, length: int) -> torch.Tensor:
    return torch.arange(length)[None].expand(r, length)


def _to_model(model: torch.nn.Module, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The tensors on the model's device. Data and noise are drawn on the CPU (the seeded
    generator), so every device trains on the same stream; on the CPU this moves nothing."""
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    return tuple(t.to(device) for t in tensors)


def _weighted_masked_ce(
    logits: torch.Tensor, ids: torch.Tensor, masked: torch.Tensor, p_mask: torch.Tensor, answer: torch.Tensor
) -> torch.Tensor:
    """sum over masked positions of CE / p_mask, per row divided by its answer length, batch mean.

    logits [R, L, V]; ids, masked, answer [R, L]; p_mask [R, L] (the probability each was masked).
    """
    ce = F.cross_entropy(logits[masked], ids[masked], reduction="none") / p_mask[masked]
    per_row = torch.zeros(ids.shape[0], dtype=ce.dtype, device=ce.device).index_add_(0, masked.nonzero()[:, 0], ce)
    return (per_row / answer.sum(1).clamp(min=1)).mean()


@OBJECTIVES.register("masked_diffusion")
def masked_diffusion(
    model: ReferenceModel, batch: Batch, mask_id: int, block_size: int, gen: torch.Generator
) -> torch.Tensor:
    """LLaDA SFT: t ~ U(0, 1) per row, each answer token masked with p = (1 - eps) t + eps,
    bidirectional attention, loss 1/p-weighted CE on the masked positions."""
    ids, answer = batch.ids, batch.answer
    r, length = ids.shape
    t = noise_levels((r,), gen)
    p = ((1 - EPS) * t + EPS)[:, None].expand(r, length)
    masked = (torch.rand(r, length, generator=gen) < p) & answer
    noisy = torch.where(masked, mask_id, ids)
    noisy, pos, ids, masked, p, answer = _to_model(model, noisy, _positions(r, length), ids, masked, p, answer)
    logits = model(noisy, pos, None)  # [R, L, V]
    return _weighted_masked_ce(logits, ids, masked, p, answer)


def block_diffusion_mask(length: int, block: int) -> torch.Tensor:
    """Attention over [noisy x_t ; clean x_0] (2L keys), bool [2L, 2L], True = may attend.

    A noisy token in block b sees the noisy tokens of block b and the clean tokens of blocks
    < b (exactly what the decoder sees: its cache of committed blocks + the block being
    denoised); a clean token sees clean tokens of blocks <= its own (the cache it forms).
    """
    blk = torch.arange(length) // block  # [L]
    same = blk[:, None] == blk[None, :]
    before = blk[None, :] < blk[:, None]
    upto = blk[None, :] <= blk[:, None]
    none = torch.zeros(length, length, dtype=torch.bool)
    top = torch.cat([same, before], dim=1)  # noisy queries: [noisy keys | clean keys]
    bottom = torch.cat([none, upto], dim=1)  # clean queries
    return torch.cat([top, bottom], dim=0)


@OBJECTIVES.register("block_diffusion")
def block_diffusion(
    model: ReferenceModel, batch: Batch, mask_id: int, block_size: int, gen: torch.Generator
) -> torch.Tensor:
    """SDAR / BD3-LM: one t ~ U(0, 1) per block, noisy and clean copies in one forward under
    `block_diffusion_mask`, 1/p-weighted CE on the masked positions of the noisy copy."""
    ids, answer = batch.ids, batch.answer
    r, length = ids.shape
    if length % block_size:
        raise ValueError(f"row length {length} is not a multiple of block_size {block_size}")
    t = noise_levels((r, length // block_size), gen)
    p = ((1 - EPS) * t + EPS).repeat_interleave(block_size, dim=1)  # [R, L]
    masked = (torch.rand(r, length, generator=gen) < p) & answer
    noisy = torch.where(masked, mask_id, ids)
    both = torch.cat([noisy, ids], dim=1)  # [R, 2L]
    pos = _positions(r, length).repeat(1, 2)  # both copies sit at the same positions
    both, pos, mask, ids, masked, p, answer = _to_model(
        model, both, pos, block_diffusion_mask(length, block_size), ids, masked, p, answer
    )
    logits = model(both, pos, mask[None].expand(r, -1, -1))[:, :length]  # only the noisy copy is scored
    return _weighted_masked_ce(logits, ids, masked, p, answer)


@OBJECTIVES.register("autoregressive")
def autoregressive(
    model: ReferenceModel, batch: Batch, mask_id: int, block_size: int, gen: torch.Generator
) -> torch.Tensor:
    """Next-token cross-entropy on the answer tokens under a causal mask."""
    ids, answer = batch.ids, batch.answer
    r, length = ids.shape
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    ids, pos, causal, answer = _to_model(model, ids, _positions(r, length), causal, answer)
    logits = model(ids, pos, causal[None].expand(r, -1, -1))  # [R, L, V]
    target = answer[:, 1:]  # the logits at i predict token i + 1
    return F.cross_entropy(logits[:, :-1][target], ids[:, 1:][target])
