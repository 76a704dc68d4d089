"""Triton kernels of the proposal's GPU path (`fast_sampling`); imported only when it runs.

Both kernels run one program per row of a [N, V] float32 tensor (N = requests x positions)
and walk the vocabulary in BLOCK-wide chunks, so V is never a compile-time shape.

`gumbel_argmax`: the counter-based RNG of `rng.py` redone in uint32 arithmetic (Triton's
uint32 multiply, add and shift wrap / shift exactly as `rng._mul32` and friends emulate in
int64), then u = (h + 0.5) / 2**32 and g = -log(-log u) in float64 as `rng.gumbel`, added in
float64 (LLaDA) or cast to float32 first (Dream) as `sampling.gumbel_argmax` does; the running
maximum keeps the first id on ties, like `torch.argmax`.

`nucleus_cutoff`: for the rows flagged `need`, the smallest logit c such that the softmax
mass of the logits strictly above c is <= top_p (so keeping x >= c is the nucleus: the mass
before each kept token is at most top_p). Bisection over the 2**32 float keys that order like
the floats, 16 candidate cuts per pass over the row (8 passes; float64 sums); unflagged rows
return at once.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

_BLOCK = 1024


@triton.jit
def _mix(x):
    """rng._mix on uint32 values."""
    x = x ^ (x >> 16)
    x = x * tl.full((1,), 0x7FEB352D, tl.uint32)
    x = x ^ (x >> 15)
    x = x * tl.full((1,), 0x846CA68B, tl.uint32)
    return x ^ (x >> 16)


@triton.jit
def _gumbel_argmax_kernel(
    x_ptr, keys_ptr, sample_ptr, out_ptr, V, mask_id,
    FP64: tl.constexpr, BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    key = tl.load(keys_ptr + row).to(tl.uint32)
    sample = tl.load(sample_ptr + row) != 0
    offs = tl.arange(0, BLOCK)
    golden = tl.full((1,), 0x9E3779B9, tl.uint32)
    # NOTE: each lane keeps its own running maximum (a lane sees increasing ids, so a strict
    # > keeps its first); one reduction at the end instead of one per chunk
    best = tl.full((BLOCK,), float("-inf"), tl.float64)
    best_id = tl.zeros((BLOCK,), tl.int32)
    base = x_ptr + row.to(tl.int64) * V
    for start in range(0, V, BLOCK):
        ids = start + offs
        inside = ids < V
        x = tl.load(base + ids, mask=inside, other=float("-inf"))
        # rng.token_uniform_from_keys: vocab hash, xor with the position key, two mixes
        vh = _mix((ids * 2 + 1).to(tl.uint32))
        h = _mix(_mix(key ^ vh) + golden)
        u = (h.to(tl.float64) + 0.5) / 4294967296.0
        g = -tl.log(-tl.log(u))
        if FP64:
            noisy = x.to(tl.float64) + g
        else:
            noisy = (x + g.to(tl.float32)).to(tl.float64)
        val = tl.where(sample, noisy, x.to(tl.float64))
        val = tl.where(inside & (ids != mask_id), val, float("-inf"))
        take = val > best
        best = tl.where(take, val, best)
        best_id = tl.where(take, ids, best_id)
    top = tl.max(best, axis=0)
    # the first id among the lanes holding the maximum (all -inf: id 0, as torch.argmax)
    first = tl.min(tl.where(best == top, best_id, 2147483647), axis=0)
    tl.store(out_ptr + row, first.to(tl.int64))


def gumbel_argmax(x: torch.Tensor, keys: torch.Tensor, sample: torch.Tensor, mask_id: int, fp64: bool) -> torch.Tensor:
    """x [N, V] float32, keys [N] int64 (< 2**32), sample [N] bool -> [N] int64."""
    x = x.contiguous()
    n, vocab = x.shape
    out = torch.empty(n, dtype=torch.int64, device=x.device)
    if n:
        _gumbel_argmax_kernel[(n,)](
            x, keys.contiguous(), sample.to(torch.int8).contiguous(), out, vocab, mask_id,
            FP64=fp64, BLOCK=_BLOCK,
        )
    return out


@triton.jit
def _float_key(x):
    """float32 -> uint32 key with the float's order (negative values bit-flipped)."""
    bits = x.to(tl.uint32, bitcast=True)
    neg = (bits >> 31) != 0
    return tl.where(neg, ~bits, bits | tl.full((1,), 0x80000000, tl.uint32))


@triton.jit
def _mass_above(base, V, lse, lo, step, K: tl.constexpr, BLOCK: tl.constexpr):
    """[K] softmax mass (float64) of the row's logits whose key is > lo + (k + 1) * step."""
    offs = tl.arange(0, BLOCK)
    cuts = lo + (tl.arange(0, K).to(tl.int64) + 1) * step  # [K] int64, at most 2**32 - 1
    acc = tl.zeros((BLOCK, K), tl.float64)  # per lane and cut
    for start in range(0, V, BLOCK):
        ids = start + offs
        x = tl.load(base + ids, mask=ids < V, other=float("-inf"))
        p = tl.exp(x - lse)
        key = _float_key(x).to(tl.int64)
        acc += tl.where(key[:, None] > cuts[None, :], p.to(tl.float64)[:, None], 0.0)
    return tl.sum(acc, axis=0)


@triton.jit
def _nucleus_cutoff_kernel(x_ptr, lse_ptr, top_p_ptr, need_ptr, out_ptr, V, K: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    if tl.load(need_ptr + row) != 0:
        base = x_ptr + row.to(tl.int64) * V
        lse = tl.load(lse_ptr + row)
        top_p = tl.load(top_p_ptr + row).to(tl.float64)
        # the smallest key t with mass_above(t) <= top_p lies in (lo, hi]; mass_above(2**32 - 1) = 0.
        # NOTE: a K-ary search: each pass over the row tests K cuts, so 32 bits take 8 passes (K=16)
        lo = tl.full((), -1, tl.int64)
        hi = tl.full((), 4294967295, tl.int64)
        while hi - lo > 1:
            step = (hi - lo + K - 1) // K
            mass = _mass_above(base, V, lse, lo, step, K, BLOCK)  # [K]
            ks = tl.arange(0, K).to(tl.int64)
            cut = tl.minimum(lo + (ks + 1) * step, hi)
            first_ok = tl.min(tl.where(mass <= top_p, cut, hi), axis=0)
            last_bad = tl.max(tl.where(mass <= top_p, lo, cut), axis=0)
            hi = first_ok
            lo = tl.maximum(last_bad, lo)
        # the cut as a value: the smallest logit whose key is >= the key found
        offs = tl.arange(0, BLOCK)
        best = tl.full((BLOCK,), float("inf"), tl.float32)
        for start in range(0, V, BLOCK):
            ids = start + offs
            x = tl.load(base + ids, mask=ids < V, other=float("inf"))
            kept = (_float_key(x).to(tl.int64) >= hi) & (ids < V)
            best = tl.minimum(best, tl.where(kept, x, float("inf")))
        tl.store(out_ptr + row, tl.min(best, axis=0))


def nucleus_cutoff(scaled: torch.Tensor, lse: torch.Tensor, top_p: torch.Tensor, need: torch.Tensor) -> torch.Tensor:
    """scaled [R, B, V] float32, lse / top_p [R, B], need [R, B] bool -> cut [R, B] float32
    (rows not needed: +inf, never read)."""
    rows, width, vocab = scaled.shape
    x = scaled.contiguous().view(rows * width, vocab)
    out = torch.full((rows * width,), float("inf"), dtype=torch.float32, device=scaled.device)
    if rows * width:
        _nucleus_cutoff_kernel[(rows * width,)](
            x, lse.to(torch.float32).contiguous().view(-1), top_p.to(torch.float32).contiguous().view(-1),
            need.to(torch.int8).contiguous().view(-1), out, vocab, K=16, BLOCK=256,
        )
    return out.view(rows, width)
