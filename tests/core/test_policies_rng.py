"""The counter-based RNG: pure function of (seed, offset, stream, position, vocab id)."""
from __future__ import annotations

import torch

from dllm_backend.core.policies import rng

TWO32 = 2**32


def _ints(u: torch.Tensor) -> list:
    return (u * TWO32 - 0.5).round().long().tolist()


def test_pinned_values():
    # Integer hashes behind the floats; a change here changes every sampled output. A GPU run of
    # this test checks CPU/GPU agreement (the arithmetic is integer-only).
    u = rng.token_uniform(torch.tensor([0, 123456789012]), torch.tensor([0, 7]), rng.STREAM_TOKENS, 2, 3)
    assert u.dtype == torch.float64
    assert _ints(u) == [
        [[1789504502, 1285954295, 291795562], [3350671005, 2981793657, 2924690866]],
        [[149463220, 3992932064, 3953967303], [1021512985, 1996040085, 3695890522]],
    ]
    p = rng.position_uniform(torch.tensor([0]), torch.tensor([0]), rng.STREAM_POSITIONS, 4)
    assert _ints(p) == [[4270314338, 3096496845, 476931546, 3888605477]]


def test_open_interval_and_roughly_uniform():
    u = rng.token_uniform(torch.tensor([5]), torch.tensor([2]), rng.STREAM_TOKENS, 64, 4096).flatten()
    assert float(u.min()) > 0.0 and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.003  # 262144 draws: sd of the mean ~0.0006
    hist = torch.histc(u.float(), bins=16, min=0.0, max=1.0) / u.numel()
    assert float((hist - 1 / 16).abs().max()) < 0.003


def test_deterministic_and_batch_independent():
    seeds = torch.tensor([11, 22, 33])
    offsets = torch.tensor([4, 0, 9])
    batch = rng.token_uniform(seeds, offsets, rng.STREAM_TOKENS, 5, 17)
    again = rng.token_uniform(seeds, offsets, rng.STREAM_TOKENS, 5, 17)
    assert torch.equal(batch, again)
    for r in range(3):
        alone = rng.token_uniform(seeds[r : r + 1], offsets[r : r + 1], rng.STREAM_TOKENS, 5, 17)
        assert torch.equal(alone[0], batch[r])
    # the same request twice in a batch, at different rows, draws the same noise
    dup = rng.position_uniform(torch.tensor([7, 1, 7]), torch.tensor([3, 3, 3]), rng.STREAM_POSITIONS, 8)
    assert torch.equal(dup[0], dup[2]) and not torch.equal(dup[0], dup[1])


def test_every_key_component_changes_the_draw():
    base = rng.position_uniform(torch.tensor([1]), torch.tensor([1]), rng.STREAM_POSITIONS, 16)
    variants = [
        rng.position_uniform(torch.tensor([2]), torch.tensor([1]), rng.STREAM_POSITIONS, 16),
        rng.position_uniform(torch.tensor([1 + 2**32]), torch.tensor([1]), rng.STREAM_POSITIONS, 16),
        rng.position_uniform(torch.tensor([1]), torch.tensor([2]), rng.STREAM_POSITIONS, 16),
        rng.position_uniform(torch.tensor([1]), torch.tensor([1]), rng.STREAM_REVEAL, 16),
    ]
    for v in variants:
        assert int((v != base).sum()) == 16
    tok = rng.token_uniform(torch.tensor([1]), torch.tensor([1]), rng.STREAM_TOKENS, 16, 2)
    assert int((tok[0, :, 0] != tok[0, :, 1]).sum()) == 16  # vocab id matters
    assert int((tok[0, 1:, 0] != tok[0, :-1, 0]).sum()) == 15  # position matters
    # a longer block extends, it does not reshuffle, the draws of the first positions
    longer = rng.position_uniform(torch.tensor([1]), torch.tensor([1]), rng.STREAM_POSITIONS, 40)
    assert torch.equal(longer[:, :16], base)


def test_gumbel_transform():
    u = torch.tensor([0.5, 0.36787944117144233], dtype=torch.float64)
    g = rng.gumbel(u)
    assert torch.allclose(g, torch.tensor([0.36651292058166435, 0.0], dtype=torch.float64), atol=1e-12)
