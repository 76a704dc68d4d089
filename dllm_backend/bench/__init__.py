"""The engine-free half of `dllm-backend bench`: records, metrics, sweeps, a reference runner, writers."""
from __future__ import annotations

from .metrics import Summary, percentile, summarize
from .records import RequestRecord
from .report import PointResult, markdown_table, write_json, write_markdown
from .sweep import DEFAULT_SWEEP, GREEDY, Sweep, SweepPoint

__all__ = [
    "Summary", "percentile", "summarize", "RequestRecord", "PointResult", "markdown_table",
    "write_json", "write_markdown", "DEFAULT_SWEEP", "GREEDY", "Sweep", "SweepPoint",
]
