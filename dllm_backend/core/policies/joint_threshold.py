"""LLaDA2.1's JointThreshold with editing (SGLang `dllm/algorithm/joint_threshold.py`).

While the block has masks: unmask masked positions with p(x0) > threshold (strict), or the
single most confident one if none passes (mask-to-token), and at the same time rewrite
already-decoded positions of the generated part whose token differs from x0 when
p(x0) > edit_threshold (token-to-token). Once no mask is left, each further step first counts
a post-edit step; when that count exceeds max_post_edit_steps, or a step finds nothing to
unmask or rewrite, the block is done (that step changes nothing). Editable means: editable and
masked when the block started (SGLang's prompt mask), so prompt tokens are never rewritten.
A done row stays done (later calls are no-ops). Proposal "dream", conf = p(x0).
"""
from __future__ import annotations

import torch

from .base import BlockState, StepOutput
from .params import ParamBatch
from .policy import PolicyBase
from .registry import register
from .sampling import prepare_logits, propose
from .selection import open_positions, top1


@register
class JointThreshold(PolicyBase):
    name = "joint_threshold"
    defaults = {"threshold": 0.5, "edit_threshold": 0.0, "max_post_edit_steps": 16}
    state_keys = ("jt_generated", "jt_post_edit_steps", "jt_finished")

    def init_state(
        self, state: BlockState, mask_id: int, vocab_size: int | None
    ) -> dict[str, torch.Tensor]:
        rows = state.tokens.shape[0]
        device = state.tokens.device
        return {
            "jt_generated": (state.tokens == mask_id) & state.editable,  # [R, B]
            "jt_post_edit_steps": torch.zeros(rows, dtype=torch.long, device=device),
            "jt_finished": torch.zeros(rows, dtype=torch.bool, device=device),
        }

    def step(
        self, logits: torch.Tensor, state: BlockState, params: ParamBatch, mask_id: int
    ) -> StepOutput:
        x0, conf = propose(prepare_logits(logits, params), params, state.rng_offset, mask_id, "dream")
        extra = state.extra
        finished = extra["jt_finished"]
        open_ = open_positions(state, mask_id)
        has_mask = open_.any(dim=1)
        unmask = open_ & (conf > params.threshold[:, None])
        unmask |= top1(conf, open_) & ~unmask.any(dim=1, keepdim=True)
        post = extra["jt_post_edit_steps"] + (~has_mask & ~finished).to(torch.long)
        over = ~has_mask & (post > params.max_post_edit_steps)
        edit = (
            extra["jt_generated"]
            & ~open_
            & (conf > params.edit_threshold[:, None])
            & (state.tokens != x0)
        )
        live = ~(finished | over)
        chosen = (unmask | edit) & live[:, None]
        now_done = finished | over | ~chosen.any(dim=1)
        extra["jt_post_edit_steps"].copy_(post)
        extra["jt_finished"].copy_(now_done)
        tokens = torch.where(chosen, x0, state.tokens)
        return StepOutput(tokens=tokens, committed=chosen, done=now_done.clone())
