"""Writes benchmark results: one JSON document (every point's summary and records) and a markdown table."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .metrics import Summary, summarize
from .records import RequestRecord
from .sweep import SweepPoint


@dataclass(frozen=True)
class PointResult:
    model: str  # checkpoint name or directory
    point: SweepPoint
    summary: Summary
    runner: str = "reference"  # "vllm" (the engine) | "reference" (the reference generator)
    records: tuple[RequestRecord, ...] = field(default=(), repr=False)

    @classmethod
    def from_records(
        cls, model: str, point: SweepPoint, records: Sequence[RequestRecord], runner: str = "reference"
    ) -> "PointResult":
        return cls(model=model, point=point, summary=summarize(records), runner=runner, records=tuple(records))

    def to_json(self, with_records: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {"model": self.model, "runner": self.runner, "point": self.point.to_json(),
                             "summary": self.summary.to_json()}
        if with_records:
            d["records"] = [r.to_json() for r in self.records]
        return d


def write_json(
    results: Sequence[PointResult], path: str | Path, meta: dict[str, Any] | None = None, with_records: bool = True,
) -> None:
    doc = {"meta": meta or {}, "results": [r.to_json(with_records) for r in results]}
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")


def write_records(results: Sequence[PointResult], path: str | Path) -> None:
    """Every request of every point, one JSON line per point, gzip-compressed (megabytes as plain JSON)."""
    import gzip

    with gzip.open(path, "wt") as f:
        for r in results:
            f.write(json.dumps(r.to_json(with_records=True), separators=(",", ":")) + "\n")


# column title -> how a cell is drawn from a result
_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("model", lambda r: r.model),
    ("runner", lambda r: r.runner),
    ("decoding", lambda r: r.point.label),
    ("accuracy", lambda r: _pct(r.summary.accuracy)),
    ("tokens/forward", lambda r: _num(r.summary.tokens_per_forward, 2)),
    ("tokens/step", lambda r: _num(r.summary.tokens_per_step, 2)),
    ("NFE/request", lambda r: _num(r.summary.nfe_per_request, 1)),
    ("output tok/s", lambda r: _num(r.summary.output_tokens_per_s, 1)),
    ("latency p50 (ms)", lambda r: _num(r.summary.latency_p50_s * 1e3, 1)),
    ("latency p99 (ms)", lambda r: _num(r.summary.latency_p99_s * 1e3, 1)),
    ("TTFT p50 (ms)", lambda r: _num(None if r.summary.ttft_p50_s is None else r.summary.ttft_p50_s * 1e3, 1)),
)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _num(x: float | None, digits: int) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown_table(results: Sequence[PointResult]) -> str:
    head = [title for title, _ in _COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for r in results:
        lines.append("| " + " | ".join(cell(r) for _, cell in _COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def write_markdown(results: Sequence[PointResult], path: str | Path) -> None:
    Path(path).write_text(markdown_table(results))
