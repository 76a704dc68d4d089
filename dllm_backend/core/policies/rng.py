"""Counter-based random numbers: uniform noise as a pure function of (seed, offset, position, vocab id).

Nothing here keeps a generator state. A value depends only on the request's `seed`, its
`rng_offset` (the caller adds 1 per denoising step), a `stream` constant naming the use
(token sampling, position sampling, ...), the position inside the block and, for token noise,
the vocabulary id. Hence:
- a request draws the same noise whether it runs alone or in a batch, at any row;
- CPU and GPU agree bit for bit (integer arithmetic only, then one exact int -> float64 cast);
- every tensor-parallel rank draws the same numbers without communicating.

The hash is a 32-bit integer mixer (xor-shift / multiply rounds). All arithmetic is done in
int64 on values below 2**32, and every multiplication is split into 16-bit halves so no
intermediate exceeds 2**49: torch integer overflow is never relied upon.
"""
from __future__ import annotations

import torch

_MASK32 = 0xFFFFFFFF
_MUL_A = 0x7FEB352D
_MUL_B = 0x846CA68B
_GOLDEN = 0x9E3779B9  # odd constant that separates consecutive counters before mixing
_TWO32 = 2.0**32

# Streams: one per use, so the same (seed, offset, position) gives independent draws.
STREAM_TOKENS = 1  # Gumbel noise over the vocabulary (sampling x0)
STREAM_POSITIONS = 2  # LLaDA `random` remasking confidence
STREAM_REVEAL = 3  # Dream `origin`: reveal a masked position or not
STREAM_ALG_TEMP = 4  # Dream alg_temp > 0: Gumbel-top-k over positions


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for 0 <= x < 2**32 without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & _MASK32


def _mix(x: torch.Tensor) -> torch.Tensor:
    """A bijective 32-bit mixer (input and output in [0, 2**32))."""
    x = x ^ (x >> 16)
    x = _mul32(x, _MUL_A)
    x = x ^ (x >> 15)
    x = _mul32(x, _MUL_B)
    return x ^ (x >> 16)


def _absorb(h: torch.Tensor, word: torch.Tensor) -> torch.Tensor:
    """Folds one more 32-bit word (values in [0, 2**32)) into the running hash."""
    return _mix(((h + _GOLDEN) & _MASK32) ^ word)


def _row_keys(seed: torch.Tensor, offset: torch.Tensor, stream: int) -> torch.Tensor:
    """[R] long: one key per request for this step and use."""
    seed = seed.to(torch.long)
    offset = offset.to(torch.long)
    h = _mix(torch.full_like(seed, stream & _MASK32))
    h = _absorb(h, seed & _MASK32)
    h = _absorb(h, (seed >> 32) & _MASK32)
    h = _absorb(h, offset & _MASK32)
    return _absorb(h, (offset >> 32) & _MASK32)


def _to_unit(h: torch.Tensor) -> torch.Tensor:
    """32-bit ints -> float64 in the open interval (0, 1): (h + 0.5) / 2**32."""
    return (h.to(torch.float64) + 0.5) / _TWO32


def position_uniform(
    seed: torch.Tensor, offset: torch.Tensor, stream: int, num_positions: int
) -> torch.Tensor:
    """Uniform (0, 1) noise per block position: seed, offset [R] -> [R, B] float64."""
    keys = _row_keys(seed, offset, stream)  # [R]
    pos = torch.arange(num_positions, device=keys.device, dtype=torch.long)  # [B]
    h = _absorb(keys[:, None], _mix(pos))  # [R, B]
    return _to_unit(_mix(h))


def token_keys(seed: torch.Tensor, offset: torch.Tensor, stream: int, num_positions: int) -> torch.Tensor:
    """[R, B] long: the per-(request, position) hash state that token noise continues from.

    Split out so that a fused kernel can take these [R, B] keys and hash the vocabulary ids
    itself (`token_uniform_from_keys` is the definition it must reproduce)."""
    keys = _row_keys(seed, offset, stream)  # [R]
    pos = torch.arange(num_positions, device=keys.device, dtype=torch.long)
    return _absorb(keys[:, None], _mix(pos))


def vocab_hash(vocab_size: int, device: torch.device) -> torch.Tensor:
    """[V] long: each vocabulary id's own mix, xor-ed into the position keys."""
    return _mix((torch.arange(vocab_size, device=device, dtype=torch.long) * 2 + 1) & _MASK32)


def token_uniform_from_keys(pos_keys: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """[R, B] keys (`token_keys`) -> [R, B, V] float64 uniform (0, 1) noise."""
    # NOTE: the vocab id is hashed once ([V]) and combined by a single xor before the two final
    # rounds, so the per-element cost is two mixes, not a full chain.
    vocab = vocab_hash(vocab_size, pos_keys.device)
    h = _mix(pos_keys[:, :, None] ^ vocab[None, None, :])  # [R, B, V]
    return _to_unit(_mix((h + _GOLDEN) & _MASK32))


def token_uniform(
    seed: torch.Tensor, offset: torch.Tensor, stream: int, num_positions: int, vocab_size: int
) -> torch.Tensor:
    """Uniform (0, 1) noise per (position, vocab id): seed, offset [R] -> [R, B, V] float64."""
    return token_uniform_from_keys(token_keys(seed, offset, stream, num_positions), vocab_size)


def gumbel(uniform: torch.Tensor) -> torch.Tensor:
    """Standard Gumbel noise -log(-log U) from uniform (0, 1) noise (same dtype)."""
    return -torch.log(-torch.log(uniform))
