"""The proposal's GPU path: top-p / top-k without a full-vocabulary sort, and a fused Gumbel-max.

`sampling.py` is the definition (its torch code runs on CPU and is the oracle); this module
computes the same results with less memory traffic where Triton runs (CUDA by default):

- top-p / top-k: each row's vocabulary is cut into chunks of `CHUNK` ids and the `PER_CHUNK`
  largest of each chunk are kept as candidates (one batched `topk` over short slices, plus the
  short tail chunk whole). Every value above `floor` = the largest of the chunks' PER_CHUNK-th
  values is then a candidate, so the candidates sorted (value descending, id ascending: the
  torch path's stable order) are the row's exact ranking down to `floor`. The nucleus is read
  from their cumulative probability (softmax over the *whole* row through its logsumexp); a
  row whose nucleus closes above `floor` is exact. Only rows whose nucleus is wider (flat
  distributions) go through `nucleus_cutoff`, a Triton kernel that finds their cut by
  bisection over the float order with one pass over the row per bit; every other row exits at
  once. top_k <= PER_CHUNK reads its k-th value from the candidates; a larger top_k uses
  `torch.topk`. No step reads device data on the host.
- Gumbel-max: `gumbel_argmax` hashes (position key, vocab id) -> uniform -> Gumbel noise and
  takes the running argmax in one pass over the logits, never materialising the [R, B, V]
  noise the torch path builds with dozens of int64 passes.

Agreement with the torch path: x0 is bit-identical where the noise is (the same integer hash,
then the same float64 log / add as torch on that device). The nucleus can differ only where
the mass before a token is within float rounding of top_p (sums are formed in another order),
and, in `nucleus_cutoff`'s rows, at a tie of logits exactly on the cut (kept together there,
in id order by the torch path).

Mode: `DLLM_POLICY_KERNELS` = "auto" (default: CUDA tensors when Triton imports), "off" (the
torch path everywhere), "on" (also CPU tensors: with TRITON_INTERPRET=1 the kernels run in
Triton's interpreter, which is how the CPU test suite checks them); `set_mode` changes it at
run time (benchmarks compare both paths in one process).
"""
from __future__ import annotations

import functools
import logging
import os

import torch

from .params import ParamBatch

CHUNK = 512  # vocabulary ids per candidate chunk
PER_CHUNK = 16  # candidates kept per chunk (also the largest top_k served from candidates)
MODES = ("auto", "off", "on")
_mode = os.environ.get("DLLM_POLICY_KERNELS", "auto")
_NEG_INF = float("-inf")


def set_mode(mode: str) -> None:
    global _mode
    if mode not in MODES:
        raise ValueError(f"unknown kernel mode {mode!r}; valid choices: {', '.join(MODES)}")
    _mode = mode


@functools.lru_cache(maxsize=None)
def _triton_ok() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def enabled(t: torch.Tensor) -> bool:
    """Whether tensors like `t` take this module's path."""
    if _mode == "off":
        return False
    if _mode == "on":
        return True
    return t.is_cuda and _triton_ok() and _kernels_work(str(t.device))


@functools.lru_cache(maxsize=None)
def _kernels_work(device: str) -> bool:
    """Once per device: the kernels compile and agree with the torch path on a small input;
    otherwise the torch path serves (a warning says why), never a wrong token."""
    from .rng import STREAM_TOKENS, gumbel, token_keys, token_uniform_from_keys

    try:
        g = torch.Generator(device=device).manual_seed(0)
        x = torch.randn((2, 3, 3 * CHUNK + 5), generator=g, device=device)
        keys = token_keys(torch.tensor([1, 2], device=device), torch.tensor([0, 4], device=device), STREAM_TOKENS, 3)
        noise = gumbel(token_uniform_from_keys(keys, x.shape[-1]))
        for dtype in (torch.float64, torch.float32):
            want = (x.to(dtype) + noise.to(dtype)).argmax(dim=-1)
            got = gumbel_argmax(x, keys, torch.ones(2, dtype=torch.bool, device=device), -1, dtype)
            if not torch.equal(got, want):
                raise RuntimeError(f"gumbel_argmax disagrees with the torch path ({dtype})")
        lse = torch.logsumexp(x, dim=-1)
        cut = _kernels().nucleus_cutoff(x, lse, torch.full_like(lse, 0.5), torch.ones_like(lse, dtype=torch.bool))
        mass = torch.where(x > cut[..., None], torch.exp(x - lse[..., None]), 0.0).sum(dim=-1)
        if not bool(((mass <= 0.5) & (mass > 0.4)).all()):
            raise RuntimeError("nucleus_cutoff disagrees with the torch path")
    except Exception as e:  # noqa: BLE001 - any failure means: use the torch path
        logging.getLogger(__name__).warning("policy kernels disabled on %s (torch path instead): %s", device, e)
        return False
    return True


def _kernels():
    from . import _triton_kernels

    return _triton_kernels


def sort_key(values: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """int64 key whose descending order is (value descending, id ascending); float32 values.

    NOTE: the float bits are mapped to a signed int that orders like the float (negative
    values have their magnitude bits flipped), shifted above 32 free bits that hold the
    reversed id, so one sort replaces the two a stable tie order would otherwise need."""
    bits = values.contiguous().view(torch.int32).to(torch.int64)
    ordered = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return (ordered << 32) | (0xFFFFFFFF - ids)


def candidates(scaled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[R, B, V] -> values [R, B, M] (ranked), their ids [R, B, M], floor [R, B]: every value
    above floor is among the candidates (-inf when all ids are candidates)."""
    rows, width, vocab = scaled.shape
    full = vocab // CHUNK
    parts_v, parts_i = [], []
    floor = torch.full((rows, width), _NEG_INF, device=scaled.device)
    if full:
        # NOTE: a view, no copy: the sliced last dim splits into [full, CHUNK] rows
        chunks = scaled[..., : full * CHUNK].view(rows, width, full, CHUNK)
        v, i = chunks.topk(PER_CHUNK, dim=-1)  # [R, B, full, PER_CHUNK], sorted
        i = i + torch.arange(0, full * CHUNK, CHUNK, device=scaled.device)[:, None]
        floor = v[..., -1].amax(dim=-1)
        parts_v.append(v.flatten(2))
        parts_i.append(i.flatten(2))
    if vocab > full * CHUNK:
        tail = scaled[..., full * CHUNK :]
        parts_v.append(tail)
        parts_i.append(torch.arange(full * CHUNK, vocab, device=scaled.device).expand(rows, width, -1))
    values, ids = torch.cat(parts_v, dim=-1), torch.cat(parts_i, dim=-1)
    order = sort_key(values, ids).argsort(dim=-1, descending=True)
    return values.gather(-1, order), ids.gather(-1, order), floor


def _nucleus_cut(
    scaled: torch.Tensor, values: torch.Tensor, ids: torch.Tensor, floor: torch.Tensor, top_p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row the last kept (value, id) of the top_p nucleus: keep x > c, or x == c with id <= i.

    top_p [R] float32. Rows with top_p == 1 keep everything (c = -inf, i = V)."""
    vocab = scaled.shape[-1]
    lse = torch.logsumexp(scaled, dim=-1)  # [R, B]
    p = torch.exp(values - lse[..., None])
    over = p.cumsum(dim=-1) > top_p[:, None, None]  # [R, B, M]
    last = over.to(torch.int8).argmax(dim=-1, keepdim=True)  # first position over top_p
    cut = values.gather(-1, last).squeeze(-1)
    cut_id = ids.gather(-1, last).squeeze(-1)
    open_ = (top_p < 1)[:, None].expand_as(cut)
    exact = over.any(dim=-1) & (cut > floor)
    need = open_ & ~exact  # [R, B]: the nucleus is wider than the candidates
    wide = _kernels().nucleus_cutoff(scaled, lse, top_p[:, None].expand_as(cut), need)
    everything = torch.full_like(cut_id, vocab)
    cut = torch.where(need, wide, cut).masked_fill(~open_, _NEG_INF)
    cut_id = torch.where(need | ~open_, everything, cut_id)
    return cut, cut_id


def filter_logits(scaled: torch.Tensor, params: ParamBatch) -> torch.Tensor:
    """Same as the torch path of `sampling.filter_logits` (see the module docstring)."""
    vocab = scaled.shape[-1]
    values = ids = None
    if params.any_top_p or 0 < params.max_top_k <= PER_CHUNK:
        values, ids, floor = candidates(scaled)
    keep = torch.ones_like(scaled, dtype=torch.bool)
    if params.any_top_p:
        cut, cut_id = _nucleus_cut(scaled, values, ids, floor, params.top_p)
        arange = torch.arange(vocab, device=scaled.device)
        keep = (scaled > cut[..., None]) | ((scaled == cut[..., None]) & (arange <= cut_id[..., None]))
    if params.max_top_k > 0:
        ranked = values if params.max_top_k <= PER_CHUNK else torch.topk(scaled, min(params.max_top_k, vocab)).values
        k = params.top_k.clamp(max=min(vocab, ranked.shape[-1]))  # [R]
        idx = (k - 1).clamp(min=0)[:, None, None].expand(*scaled.shape[:2], 1)
        kth = ranked.gather(-1, idx).masked_fill((k == 0)[:, None, None], _NEG_INF)  # [R, B, 1]
        keep &= scaled >= kth
    return scaled.masked_fill(~keep, _NEG_INF)


def gumbel_argmax(
    filtered: torch.Tensor, keys: torch.Tensor, sampling: torch.Tensor, mask_id: int, dtype: torch.dtype
) -> torch.Tensor:
    """[R, B, V] logits, [R, B] hash keys (`rng.token_keys`), [R] bool rows that sample ->
    x0 [R, B]: argmax of logits + Gumbel(keys, vocab id) in `dtype`, never `mask_id`."""
    rows, width, _ = filtered.shape
    per_position = sampling[:, None].expand(rows, width)
    out = _kernels().gumbel_argmax(filtered.reshape(rows * width, -1), keys.reshape(-1),
                                   per_position.reshape(-1), mask_id, dtype == torch.float64)
    return out.view(rows, width)
