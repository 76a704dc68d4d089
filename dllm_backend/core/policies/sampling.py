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
defaults both styles are exactly the references' arithmetic. Whether top_p / top_k also shape
a greedy row's confidence is a family rule applied to the request's config
(`FamilySpec.greedy_filters`), not here.

The mask token. Every softmax here runs over the whole vocabulary, the mask token included,
exactly as the originals compute their confidences (and entropies, margins, nucleus masses);
only the *choice* of x0 skips it: x0 is the best token other than the mask (the next best
where the originals' argmax or draw would be the mask itself, which they would write back as
"still undecided"). So outputs equal the originals' whenever their x0 is not the mask token.
Only dInfer's decoders exclude the mask in the originals, and a trained model gives it ~0
probability at masked positions.

Other logit edits made before proposing (on a float32 copy; the caller's logits are kept):
- `suppress_eos` rows get -inf on every EOS id (LLaDA `logits_eos_inf`), before x0 and conf;
- `suppress_eos_confidence` rows get conf = -inf where x0 is an EOS id (LLaDA
  `confidence_eos_eot_inf`), so such positions are committed last.

Device paths: on CUDA the filters and the Gumbel-max run through `fast_sampling` (a top-K
pre-filter instead of a full-vocabulary sort, one fused Triton pass for noise + argmax); this
module's torch code is the CPU path and the oracle those kernels are tested against.
"""
from __future__ import annotations

import torch

from . import fast_sampling
from .params import ParamBatch
from .rng import STREAM_TOKENS, gumbel, token_keys, token_uniform_from_keys

_NEG_INF = float("-inf")
CONFIDENCE_KINDS = ("prob", "margin", "neg_entropy")


def prepare_logits(logits: torch.Tensor, params: ParamBatch) -> torch.Tensor:
    """[R, B, V] -> float32 copy with EOS at -inf for the suppress_eos rows."""
    z = logits.to(torch.float32, copy=True)
    if params.any_suppress_eos:
        vocab = z.shape[-1]
        # ids past the vocabulary land on a spare slot that is cut off (no boolean indexing: no sync)
        is_eos = torch.zeros(vocab + 1, dtype=torch.bool, device=z.device)
        is_eos.index_fill_(0, params.eos_ids.clamp(max=vocab), True)
        z.masked_fill_(is_eos[None, None, :vocab] & params.suppress_eos[:, None, None], _NEG_INF)
    return z


def filter_logits(scaled: torch.Tensor, params: ParamBatch) -> torch.Tensor:
    """Dream's top_p then top_k on temperature-scaled logits [R, B, V]; removed -> -inf."""
    if not params.any_top_p and params.max_top_k == 0:
        return scaled
    if fast_sampling.enabled(scaled):
        return fast_sampling.filter_logits(scaled, params)
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


def argmax_skipping(x: torch.Tensor, skip: int) -> torch.Tensor:
    """[..., V] -> [...] long: argmax over the last dim without id `skip` (first maximum wins).

    NOTE: two reductions over the slices left and right of `skip` read the tensor once, as a
    plain argmax does; no masked copy."""
    vocab = x.shape[-1]
    if not 0 <= skip < vocab or vocab == 1:
        return x.argmax(dim=-1)
    if skip == 0:
        return x[..., 1:].argmax(dim=-1) + 1
    left_val, left_idx = x[..., :skip].max(dim=-1)
    if skip == vocab - 1:
        return left_idx
    right_val, right_idx = x[..., skip + 1 :].max(dim=-1)
    return torch.where(right_val > left_val, right_idx + (skip + 1), left_idx)


def gumbel_argmax(
    filtered: torch.Tensor, params: ParamBatch, rng_offset: torch.Tensor, mask_id: int, dtype: torch.dtype
) -> torch.Tensor:
    """[R, B, V] -> x0 [R, B]: argmax(filtered + Gumbel) for sampling rows, plain argmax for
    greedy ones, never the mask token. The sum is formed in `dtype` (float64: LLaDA's
    Gumbel-max; float32: the Dream style), the noise is the counter-based RNG's
    (seed, rng_offset, position, vocab id) draw."""
    keys = token_keys(params.seed, rng_offset, STREAM_TOKENS, filtered.shape[1])  # [R, B]
    if fast_sampling.enabled(filtered):
        return fast_sampling.gumbel_argmax(filtered, keys, params.temperature > 0, mask_id, dtype)
    g = gumbel(token_uniform_from_keys(keys, filtered.shape[2])).to(dtype)  # [R, B, V]
    g.masked_fill_(~(params.temperature > 0)[:, None, None], 0.0)
    if 0 <= mask_id < g.shape[-1]:
        g[..., mask_id] = _NEG_INF
    return (filtered.to(dtype) + g).argmax(dim=-1)


def suppress_eos_confidence(conf: torch.Tensor, x0: torch.Tensor, params: ParamBatch) -> torch.Tensor:
    """conf [R, B] -> -inf where x0 is an EOS id, for the rows that ask for it."""
    if not params.any_suppress_eos_confidence:
        return conf
    hit = torch.isin(x0, params.eos_ids) & params.suppress_eos_confidence[:, None]
    return conf.masked_fill(hit, _NEG_INF)


def _confidence(probs: torch.Tensor, x0: torch.Tensor, kind: str) -> torch.Tensor:
    """[R, B] confidence of x0 from the (filtered) distribution probs [R, B, V]."""
    if kind == "prob":
        return probs.gather(-1, x0[..., None]).squeeze(-1)
    if kind == "margin":
        top2 = torch.topk(probs, min(2, probs.shape[-1]), dim=-1).values
        return top2[..., 0] - top2[..., -1] if top2.shape[-1] == 2 else top2[..., 0]
    if kind == "neg_entropy":
        return (probs * torch.log(probs + 1e-10)).sum(dim=-1)
    raise ValueError(f"unknown confidence {kind!r}; valid choices: {', '.join(CONFIDENCE_KINDS)}")


def propose(
    z: torch.Tensor,
    params: ParamBatch,
    rng_offset: torch.Tensor,
    mask_id: int,
    style: str,
    confidence: str = "prob",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prepared logits z [R, B, V] (see `prepare_logits`) -> x0 [R, B] long, conf [R, B] float32.

    rng_offset [R]: the block state's counter (noise is drawn only when a row samples).
    """
    if style not in ("llada", "dream"):
        raise ValueError(f"unknown proposal style {style!r}; valid choices: llada, dream")
    temperature = params.temperature  # [R] float64
    scale = torch.where(temperature > 0, temperature, torch.ones_like(temperature))
    scaled = z / scale.to(torch.float32)[:, None, None]
    filtered = filter_logits(scaled, params)
    if style == "llada":
        if params.any_sampling:
            x0 = gumbel_argmax(filtered, params, rng_offset, mask_id, torch.float64)
        else:
            x0 = argmax_skipping(filtered, mask_id)
        conf = torch.softmax(z, dim=-1).gather(-1, x0[..., None]).squeeze(-1)
        return x0, suppress_eos_confidence(conf, x0, params)
    probs = torch.softmax(filtered, dim=-1)  # [R, B, V]
    x0 = argmax_skipping(probs, mask_id)
    if params.any_sampling:
        sampled = gumbel_argmax(filtered, params, rng_offset, mask_id, torch.float32)
        x0 = torch.where((temperature > 0)[:, None], sampled, x0)
    return x0, suppress_eos_confidence(_confidence(probs, x0, confidence), x0, params)
