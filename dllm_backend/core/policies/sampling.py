"""Token proposal: x0 and a confidence per position from logits, per-request knobs in one batch.

Two proposal styles, as in the reference generators:

- "llada" (LLaDA `generate.py`, Fast-dLLM v1, dInfer): x0 = argmax(logits / T + Gumbel), the
  Gumbel-max form of the reference's float64 `exp(logits) / (-log U)^T` (same argmax, no
  overflow of exp); conf = softmax(clean logits)[x0], i.e. *without* temperature or filtering.
  Used by: low_confidence, random (x0 only), factor, hierarchical, credit.
- "dream" (Dream `sample_tokens`; SDAR, LLaDA2, Fast-dLLM v2 sample the same way): logits / T,
  then top_p, then top_k; x0 sampled from the filtered softmax (argmax of it at T = 0); the
  confidence is read from those filtered probs: "prob" = p[x0], "margin" = p1 - p2,
  "neg_entropy" = sum p log(p + 1e-10). Used by: maskgit_plus ("prob"), topk_margin
  ("margin"), entropy ("neg_entropy"), origin (x0 only), threshold, low_confidence_dynamic,
  joint_threshold ("prob"), eb_sampler ("neg_entropy").

T == 0 is exact argmax (no noise drawn; ties go to the lower vocab id). In the "llada" style
top_p / top_k (off in the reference) restrict which tokens the Gumbel-max may pick; with their
defaults both styles are exactly the references' arithmetic.

Logit edits made before proposing (on a float32 copy; the caller's logits are not touched):
- the mask token's logit is -inf, so it is never proposed. The references do not do this
  (only dInfer's threshold decoder excludes it), but a trained model gives the mask token ~0
  probability, so the only effect is a guarantee that a commit never writes a mask back;
- `suppress_eos` rows get -inf on every EOS id (LLaDA `logits_eos_inf`), before x0 and conf;
- `suppress_eos_confidence` rows get conf = -inf where x0 is an EOS id (LLaDA
  `confidence_eos_eot_inf`), so such positions are committed last.
"""
from __future__ import annotations

import torch

from .params import ParamBatch
from .rng import STREAM_TOKENS, gumbel, token_uniform

_NEG_INF = float("-inf")
CONFIDENCE_KINDS = ("prob", "margin", "neg_entropy")


def prepare_logits(logits: torch.Tensor, params: ParamBatch, mask_id: int) -> torch.Tensor:
    """[R, B, V] -> float32 copy with the mask token (and EOS for suppress_eos rows) at -inf."""
    z = logits.to(torch.float32, copy=True)
    if 0 <= mask_id < z.shape[-1]:
        z[..., mask_id] = _NEG_INF
    if params.any_suppress_eos:
        vocab = z.shape[-1]
        # ids past the vocabulary land on a spare slot that is cut off (no boolean indexing: no sync)
        is_eos = torch.zeros(vocab + 1, dtype=torch.bool, device=z.device)
        is_eos.index_fill_(0, params.eos_ids.clamp(max=vocab), True)
        z.masked_fill_(is_eos[None, None, :vocab] & params.suppress_eos[:, None, None], _NEG_INF)
    return z


def _filter(scaled: torch.Tensor, params: ParamBatch) -> torch.Tensor:
    """Dream's top_p then top_k on temperature-scaled logits [R, B, V]; removed -> -inf."""
    if not params.any_top_p and params.max_top_k == 0:
        return scaled
    vocab = scaled.shape[-1]
    remove = torch.zeros_like(scaled, dtype=torch.bool)
    if params.any_top_p:
        # stable: which of several tied tokens survive does not depend on the backend
        ranked, order = torch.sort(scaled, dim=-1, descending=True, stable=True)
        cum = torch.softmax(ranked, dim=-1).cumsum(dim=-1)
        top_p = params.top_p[:, None, None]
        # a token goes when the mass *before* it already exceeds top_p (the first always stays)
        drop = torch.zeros_like(remove)
        drop[..., 1:] = cum[..., :-1] > top_p
        drop &= top_p < 1  # top_p == 1 rows keep everything even if the cumsum rounds above 1
        remove.scatter_(-1, order, drop)
    else:
        ranked = torch.topk(scaled, min(params.max_top_k, vocab), dim=-1).values
    if params.max_top_k > 0:
        k = params.top_k.clamp(max=min(vocab, ranked.shape[-1]))  # [R]
        idx = (k - 1).clamp(min=0)[:, None, None].expand(*scaled.shape[:2], 1)
        kth = ranked.gather(-1, idx)  # [R, B, 1] k-th largest (ties at it are kept)
        kth = kth.masked_fill((k == 0)[:, None, None], _NEG_INF)
        remove |= scaled < kth
    return scaled.masked_fill(remove, _NEG_INF)


def _gumbel_noise(
    params: ParamBatch, offset: torch.Tensor, shape: torch.Size, dtype: torch.dtype
) -> torch.Tensor:
    """[R, B, V] Gumbel noise for sampling rows, 0 for greedy rows."""
    u = token_uniform(params.seed, offset, STREAM_TOKENS, shape[1], shape[2])
    g = gumbel(u).to(dtype)
    return g.masked_fill(~(params.temperature > 0)[:, None, None], 0.0)


def suppress_eos_confidence(conf: torch.Tensor, x0: torch.Tensor, params: ParamBatch) -> torch.Tensor:
    """conf [R, B] -> -inf where x0 is an EOS id, for the rows that ask for it."""
    if not params.any_suppress_eos_confidence:
        return conf
    hit = torch.isin(x0, params.eos_ids) & params.suppress_eos_confidence[:, None]
    return conf.masked_fill(hit, _NEG_INF)


def propose(
    z: torch.Tensor,
    params: ParamBatch,
    rng_offset: torch.Tensor,
    style: str,
    confidence: str = "prob",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prepared logits z [R, B, V] (see `prepare_logits`) -> x0 [R, B] long, conf [R, B] float32.

    rng_offset [R]: the block state's counter (noise is drawn only when a row samples).
    """
    temperature = params.temperature  # [R] float64
    scale = torch.where(temperature > 0, temperature, torch.ones_like(temperature))
    scaled = z / scale.to(torch.float32)[:, None, None]
    filtered = _filter(scaled, params)
    if style == "llada":
        if params.any_sampling:
            noisy = filtered.to(torch.float64) + _gumbel_noise(params, rng_offset, z.shape, torch.float64)
            x0 = noisy.argmax(dim=-1)
        else:
            x0 = filtered.argmax(dim=-1)
        conf = torch.softmax(z, dim=-1).gather(-1, x0[..., None]).squeeze(-1)
        return x0, suppress_eos_confidence(conf, x0, params)
    if style != "dream":
        raise ValueError(f"unknown proposal style {style!r}; valid choices: llada, dream")
    probs = torch.softmax(filtered, dim=-1)  # [R, B, V]
    x0 = probs.argmax(dim=-1)
    if params.any_sampling:
        sampled = (filtered + _gumbel_noise(params, rng_offset, z.shape, torch.float32)).argmax(dim=-1)
        x0 = torch.where((temperature > 0)[:, None], sampled, x0)
    if confidence == "prob":
        conf = probs.gather(-1, x0[..., None]).squeeze(-1)
    elif confidence == "margin":
        top2 = torch.topk(probs, min(2, probs.shape[-1]), dim=-1).values
        conf = top2[..., 0] - top2[..., -1] if top2.shape[-1] == 2 else top2[..., 0]
    elif confidence == "neg_entropy":
        conf = (probs * torch.log(probs + 1e-10)).sum(dim=-1)
    else:
        choices = ", ".join(CONFIDENCE_KINDS)
        raise ValueError(f"unknown confidence {confidence!r}; valid choices: {choices}")
    return x0, suppress_eos_confidence(conf, x0, params)
