"""Held-out accuracy of a trained checkpoint, overall and per task, through the benchmark's reference runner."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..bench.metrics import Summary, summarize
from ..bench.reference_runner import load, run_point
from ..bench.sweep import GREEDY, SweepPoint
from .tasks import Example

ONE_TOKEN_PER_STEP = SweepPoint("low_confidence")  # steps None: one token per denoising step


@dataclass(frozen=True)
class Evaluation:
    summary: Summary
    per_task: dict[str, float]


def evaluate(
    model_dir: str | Path, examples: Sequence[Example], point: SweepPoint | None = None, max_tokens: int = 24
) -> Evaluation:
    """Decodes `examples` (dLLMs: `point`, default one token per step; the AR twin: greedy)."""
    model = load(model_dir)
    if point is None:
        point = SweepPoint(GREEDY) if model.generator == GREEDY else ONE_TOKEN_PER_STEP
    records = run_point(model_dir, examples, point, max_tokens, model)
    hits: dict[str, list[bool]] = defaultdict(list)
    for ex, rec in zip(examples, records):
        hits[ex.task].append(bool(rec.correct))
    return Evaluation(
        summary=summarize(records),
        per_task={task: sum(v) / len(v) for task, v in sorted(hits.items())},
    )
