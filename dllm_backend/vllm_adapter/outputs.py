"""What the denoising runner hands back to the scheduler each step."""
from __future__ import annotations

from dataclasses import dataclass, field

from vllm.v1.outputs import ModelRunnerOutput


@dataclass
class DllmRunnerOutput(ModelRunnerOutput):
    """`sampled_token_ids` carries a request's newly committed tokens when its block is
    finished (so the stock code appends, stop-checks and streams them);
    `block_tokens[req_id]` carries the still-undecided part of an unfinished block (mask
    id where undecided), which the scheduler sends back as that request's draft tokens."""

    block_tokens: dict[str, list[int]] = field(default_factory=dict)
