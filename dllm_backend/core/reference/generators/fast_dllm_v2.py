"""Reference generator for Fast-dLLM v2: block-causal blocks decoded as sub-blocks, one AR token per block.

Follows the model's own `generate` (NVlabs/Fast-dLLM, v2) without its optional
`use_block_cache`:
- blocks of `request.block_size` (the checkpoint's `bd_size`) aligned to position 0; the
  complete prompt blocks are prefilled once with a block-causal mask and their KV kept;
  when the prompt fills whole blocks, the first generated token is the argmax of the
  prefill's last logit, as in an autoregressive model;
- the block holding the next position is decoded sub-block by sub-block
  (`FamilySpec.sub_block_size`, 8), left to right; a step forwards the whole block
  against the read-only cache, shifts its logits right by one inside the block
  (position i is read from the logits at i - 1; the block's first position, never
  masked, keeps its own) and lets the policy commit positions of the current sub-block
  only (the original's threshold rule: conf > tau plus the argmax; any registered policy
  may be used);
- a finished block is forwarded once more to append its KV (the commit forward), and the
  argmax of that forward's last logit becomes the first token of the next block;
- before every forward, if the block's first generated stop id has no mask before it,
  the request ends there (no commit forward; later masks are dropped);
- an appended token (after a whole-block prompt's prefill or a commit forward) that is a
  stop id ends the request and is returned as its last token, as the original does (its
  block loop checks every token after the original prompt before starting a block).
Unlike the original, generation runs until `max_tokens` tokens exist (the original runs
`max_new_tokens // block_size` blocks counting the prompt's partial block), the output is
cut at `max_tokens`, and a prompt of exactly one block is prefilled (the original skips the
prefill then and decodes the next block without seeing the prompt).
The appended token is never the mask id (the policies' rule; the original would decode an
appended mask again). A stop found before a forward leaves `denoise_block` through a
private exception raised by the logits_fn, so the forward is neither run nor counted.

`generate_recompute` gives the same decoding with every forward recomputing positions
[0, end of block) under a block-causal mask and no cache.
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


class _StopReached(Exception):
    """Raised inside a logits_fn to leave `denoise_block` before a forward: a stop id is final."""


@torch.inference_mode()
def generate(loaded: LoadedModel, request: GenerationRequest) -> GenerationResult:
    """KV-cached Fast-dLLM v2 decoding (the original's loop); `request` is already validated."""
    return _Run(loaded, request, CachedForward).run()


@torch.inference_mode()
def generate_recompute(loaded: LoadedModel, request: GenerationRequest) -> GenerationResult:
    """Same decoding, every forward a block-causal recompute from position 0."""
    return _Run(loaded, request, RecomputeForward).run()


class _Run:
    """One request's generation state: canvas, forwards, counters."""

    def __init__(
        self, loaded: LoadedModel, request: GenerationRequest, forward_cls: type[BlockCausalForward]
    ) -> None:
        if request.block_size is None:
            raise ValueError("block_size is None: pass the request through validate_request first")
        fam = loaded.family
        self.block = request.block_size
        self.sub = fam.spec.sub_block_size or self.block
        if self.block % self.sub:
            raise ValueError(f"block_size {self.block} is not a multiple of the sub-block size {self.sub}")
        self.request = request
        self.mask_id = fam.mask_id
        self.eos_ids = fam.eos_ids
        device = next(loaded.model.parameters()).device
        self.prompt_len = len(request.prompt_ids)
        self.want = self.prompt_len + request.max_tokens  # canvas positions [0, want) are needed
        total = padded_length(self.prompt_len, request.max_tokens, self.block)
        # +1: the token appended after the last block lands one past it
        self.canvas = torch.full((1, total + 1), fam.mask_id, dtype=torch.long, device=device)  # [1, T + 1]
        self.canvas[0, : self.prompt_len] = torch.tensor(request.prompt_ids, dtype=torch.long, device=device)
        self.positions = torch.arange(total + 1, device=device)[None]  # [1, T + 1]
        self.eos = torch.tensor(fam.eos_ids, dtype=torch.long, device=device)
        self.stats = LoopStats()
        self.params = policies.ParamBatch.from_configs([request.decode], fam.eos_ids, device)
        self.forward = forward_cls(loaded.model, self.canvas, self.block, self.stats)

    def run(self) -> GenerationResult:
        p, bs = self.prompt_len, self.block
        fixed = p  # canvas positions [0, fixed) are final: prompt, finished blocks, AR tokens
        logits = self.forward.prefill(p // bs * bs, need_logits=p % bs == 0)
        if p % bs == 0:
            fixed = self._append_ar(logits, p)
        b = fixed // bs
        while fixed < self.want and not self._stopped(p, fixed):
            if self._decode_block(b, fixed):
                break
            fixed = self._append_ar(self.forward.commit(b, need_logits=True), (b + 1) * bs)
            b += 1
        generated = self.canvas[0, p : self.want].tolist()
        token_ids, reason = cut_at_stop(generated, self.eos_ids)
        return GenerationResult(
            token_ids=token_ids, finish_reason=reason, nfe=self.stats.nfe, steps=self.stats.steps,
            tokens_per_step=self.stats.tokens_per_step,
        )

    def _append_ar(self, logits: torch.Tensor | None, pos: int) -> int:
        """Writes the argmax of the last logit at `pos` (greedy whatever the temperature, as the
        original); returns pos + 1."""
        if logits is None:
            raise RuntimeError("the forward that precedes an appended token returned no logits")
        last = logits[0, -1].clone()  # [V]
        # NOTE: never the mask token (the policies' rule too): the original would re-read an
        # appended mask as a position to denoise; a trained model gives it ~0 probability.
        last[self.mask_id] = float("-inf")
        self.canvas[0, pos] = last.argmax()
        return pos + 1

    def _decode_block(self, b: int, fixed: int) -> bool:
        """Denoises block b's positions >= `fixed` sub-block by sub-block; True if a stop ended it."""
        lo, hi = b * self.block, (b + 1) * self.block
        for s_lo in range(lo, hi, self.sub):
            s_hi = s_lo + self.sub
            tokens = self.canvas[:, s_lo:s_hi].clone()  # [1, S]
            editable = self.positions[:, s_lo:s_hi] >= fixed  # [1, S]
            if not bool(((tokens == self.mask_id) & editable).any()):
                continue
            logits_fn = self._sub_block_logits_fn(b, s_lo, fixed)
            try:
                tokens = denoise_block(
                    logits_fn, tokens, editable, self.request.decode, self.params, self.mask_id, self.stats
                )
            except _StopReached:
                return True
            self.canvas[:, s_lo:s_hi] = tokens
        return self._stopped(fixed, hi)

    def _sub_block_logits_fn(self, b: int, s_lo: int, fixed: int) -> LogitsFn:
        """The `denoise_block` logits_fn of the sub-block at s_lo: [1, S] tokens -> [1, S, V]."""
        lo, hi = b * self.block, (b + 1) * self.block
        s_hi = s_lo + self.sub

        def logits_fn(sub_tokens: torch.Tensor) -> torch.Tensor:
            self.canvas[:, s_lo:s_hi] = sub_tokens
            if self._stopped(fixed, hi):
                raise _StopReached
            logits = self.forward.block_logits(b)  # [1, B, V]
            # NOTE: the shift stays inside the block; the block's first position is never
            # masked (prompt or AR token), so the logits it keeps are never read.
            shifted = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)  # [1, B, V]
            return shifted[:, s_lo - lo : s_hi - lo]

        return logits_fn

    def _stopped(self, lo: int, hi: int) -> bool:
        """True if canvas [lo, hi) holds a stop id with no mask before it (from lo)."""
        region = self.canvas[0, lo:hi]
        hits = torch.isin(region, self.eos)
        if not bool(hits.any()):
            return False
        first = int(hits.int().argmax())
        return not bool((region[:first] == self.mask_id).any())
