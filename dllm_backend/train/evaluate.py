"""Held-out accuracy of a trained checkpoint, overall and per task, through the benchmark's reference runner."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..bench.metrics import Summary, summarize
from ..bench.records import RequestRecord
from ..bench.reference_runner import load, run_point
from ..bench.sweep import GREEDY, SweepPoint
from .tasks import Example

ONE_TOKEN_PER_STEP = SweepPoint("low_confidence")  # steps None: one token per denoising step


@dataclass(frozen=True)
class Evaluation:
    summary: Summary
    per_task: dict[str, float]
    records: list[RequestRecord]  # one per example, in order


def evaluate(
    model_dir: str | Path, examples: Sequence[Example], point: SweepPoint | None = None, max_tokens: int = 24,
    device: str = "cpu",
) -> Evaluation:
    """Decodes `examples` on `device` (dLLMs: `point`, default one token per step; the AR twin: greedy)."""
    model = load(model_dir, device)
    if point is None:
        point = SweepPoint(GREEDY) if model.generator == GREEDY else ONE_TOKEN_PER_STEP
    records = run_point(model_dir, examples, point, max_tokens, model)
    hits: dict[str, list[bool]] = defaultdict(list)
    for ex, rec in zip(examples, records):
        hits[ex.task].append(bool(rec.correct))
    return Evaluation(
        summary=summarize(records),
        per_task={task: sum(v) / len(v) for task, v in sorted(hits.items())},
        records=records,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m dllm_backend.train.evaluate DIR... [--device cuda]`: held-out accuracy rows
    (checkpoint | all | copy | reverse | parity) for checkpoints/README.md."""
    import argparse

    from .tasks import load_examples

    p = argparse.ArgumentParser(prog="python -m dllm_backend.train.evaluate", description=main.__doc__)
    p.add_argument("model_dirs", nargs="+")
    p.add_argument("--eval", default="checkpoints/heldout.jsonl")
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)
    examples = load_examples(args.eval)
    for d in args.model_dirs:
        ev = evaluate(d, examples, device=args.device)
        cells = [ev.summary.accuracy, *(ev.per_task.get(t) for t in ("copy", "reverse", "parity"))]
        print(f"| `{Path(d).name}` | " + " | ".join("-" if c is None else f"{100 * c:.1f}%" for c in cells) + " |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
