"""Training objectives on hand-built inputs: masks, what is noised, and the loss weighting."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dllm_backend.train.data import Batch, Encoded, collate
from dllm_backend.train.objectives import (
    EPS, autoregressive, block_diffusion, block_diffusion_mask, masked_diffusion, noise_levels,
)

V, MASK = 8, 7


class _Spy(torch.nn.Module):
    """Returns fixed logits (token 0 favoured) and keeps what it was called with."""

    def forward(self, ids, positions, mask=None, cache=None, write="none"):
        self.ids, self.positions, self.mask = ids.clone(), positions.clone(), mask
        logits = torch.zeros(*ids.shape, V)
        logits[..., 0] = 2.0
        return logits


def _batch() -> Batch:
    # prompt [1, 2, 3], answer [4, 5, 6, 6]: 2 rows
    ids = torch.tensor([[1, 2, 3, 4, 5, 6, 6, 6]] * 2)
    answer = torch.tensor([[False] * 3 + [True] * 5] * 2)
    return Batch(ids=ids, answer=answer)


def test_collate_pads_and_marks_answers() -> None:
    rows = [Encoded((1, 2), (3, 4, 9)), Encoded((1,), (5, 9))]
    b = collate(rows, pad_id=0, multiple=4)
    assert b.ids.tolist() == [[1, 2, 3, 4, 9, 0, 0, 0], [1, 5, 9, 0, 0, 0, 0, 0]]
    assert b.answer.int().tolist() == [[0, 0, 1, 1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 1, 1, 1]]
    b = collate(rows, pad_id=0, pads_are_answer=False)
    assert b.answer.int().tolist() == [[0, 0, 1, 1, 1], [0, 1, 1, 0, 0]]


def test_block_diffusion_mask_exact() -> None:
    m = block_diffusion_mask(4, 2).int().tolist()
    assert m == [
        # noisy 0..3          clean 0..3
        [1, 1, 0, 0,          0, 0, 0, 0],
        [1, 1, 0, 0,          0, 0, 0, 0],
        [0, 0, 1, 1,          1, 1, 0, 0],
        [0, 0, 1, 1,          1, 1, 0, 0],
        [0, 0, 0, 0,          1, 1, 0, 0],
        [0, 0, 0, 0,          1, 1, 0, 0],
        [0, 0, 0, 0,          1, 1, 1, 1],
        [0, 0, 0, 0,          1, 1, 1, 1],
    ]


def _expected(spy_ids: torch.Tensor, batch: Batch, p_rows: torch.Tensor) -> torch.Tensor:
    """Loss for the spy's constant logits: CE per masked token / p, per row / answer length."""
    ce = -F.log_softmax(torch.tensor([2.0] + [0.0] * (V - 1)), -1)  # [V]
    masked = spy_ids == MASK
    per_row = (ce[batch.ids] * masked / p_rows[:, None]).sum(1) / batch.answer.sum(1)
    return per_row.mean()


def test_masked_diffusion_never_masks_the_prompt_and_weights_by_1_over_p() -> None:
    batch, spy = _batch(), _Spy()
    gen = torch.Generator().manual_seed(0)
    loss = masked_diffusion(spy, batch, MASK, 4, gen)
    assert spy.mask is None  # bidirectional
    assert spy.ids[:, :3].tolist() == [[1, 2, 3]] * 2
    assert ((spy.ids == MASK) <= batch.answer).all()
    t = noise_levels((2,), torch.Generator().manual_seed(0))  # the same draw
    p = (1 - EPS) * t + EPS
    assert math.isclose(float(loss), float(_expected(spy.ids, batch, p)), rel_tol=1e-6)


def test_block_diffusion_feeds_noisy_then_clean_copy() -> None:
    batch, spy = _batch(), _Spy()
    loss = block_diffusion(spy, batch, MASK, 4, torch.Generator().manual_seed(1))
    assert spy.ids.shape == (2, 16)
    assert torch.equal(spy.ids[:, 8:], batch.ids)  # clean copy
    assert spy.positions[0].tolist() == list(range(8)) * 2
    assert torch.equal(spy.mask[0], block_diffusion_mask(8, 4))
    noisy = spy.ids[:, :8]
    assert ((noisy == MASK) <= batch.answer).all() and noisy[:, :3].tolist() == [[1, 2, 3]] * 2
    t = noise_levels((2, 2), torch.Generator().manual_seed(1))  # one t per block
    p = ((1 - EPS) * t + EPS).repeat_interleave(4, dim=1)
    ce = -F.log_softmax(torch.tensor([2.0] + [0.0] * (V - 1)), -1)
    masked = noisy == MASK
    want = ((ce[batch.ids] * masked / p).sum(1) / batch.answer.sum(1)).mean()
    assert math.isclose(float(loss), float(want), rel_tol=1e-6)


def test_autoregressive_loss_is_next_token_ce_on_answers() -> None:
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    answer = torch.tensor([[False, False, True, True, False]])
    spy = _Spy()
    loss = autoregressive(spy, Batch(ids, answer), MASK, 4, torch.Generator())
    assert torch.equal(spy.mask[0], torch.ones(5, 5, dtype=torch.bool).tril())
    ce = -F.log_softmax(torch.tensor([2.0] + [0.0] * (V - 1)), -1)
    assert math.isclose(float(loss), float((ce[3] + ce[4]) / 2), rel_tol=1e-6)  # targets 3, 4


def testnoise_levels_are_stratified_over_the_batch() -> None:
    """One draw per stratum [k/n, (k+1)/n): every batch covers all noise levels evenly."""
    t = noise_levels((4, 8), torch.Generator().manual_seed(3))  # [4, 8]
    assert t.shape == (4, 8) and ((t >= 0) & (t < 1)).all()
    strata = (t.flatten() * 32).floor().long().sort().values
    assert strata.tolist() == list(range(32))
