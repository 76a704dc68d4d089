"""One finished request as the benchmark sees it: counts, three timestamps and the score."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class RequestRecord:
    """Times are seconds on one clock shared by every record of a run (any origin).

    start_s: the request was submitted; first_token_s: its first output token was committed
    (None when unknown); end_s: its last token was returned. nfe: model forwards run for it
    (a batched engine forward counts once for every request in the batch); steps: denoising
    steps (decode steps for an AR model). correct: exact match, None when not scored.
    output_ids: the generated token ids, None when not kept.
    """

    request_id: str
    prompt_tokens: int
    output_tokens: int
    start_s: float
    first_token_s: float | None
    end_s: float
    nfe: int
    steps: int
    correct: bool | None = None
    finish_reason: str = "stop"
    output_ids: tuple[int, ...] | None = None  # the generated token ids (compares runners token for token)

    def __post_init__(self) -> None:
        for name in ("prompt_tokens", "output_tokens", "nfe", "steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if self.end_s < self.start_s:
            raise ValueError(f"end_s {self.end_s} is before start_s {self.start_s} ({self.request_id!r})")
        first = self.first_token_s
        if first is not None and not self.start_s <= first <= self.end_s:
            raise ValueError(
                f"first_token_s {first} is outside [start_s, end_s] = [{self.start_s}, {self.end_s}] "
                f"({self.request_id!r})"
            )

    @property
    def latency_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_s is None else self.first_token_s - self.start_s

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
