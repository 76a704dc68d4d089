"""Benchmark metrics computed from per-request records (engine-agnostic, no clocks read here).

- accuracy: correct / scored requests (None when nothing was scored);
- output_tokens_per_s: all output tokens / the run's span (first start to last end), the
  throughput a client sees at this concurrency;
- latency p50 / p99 and time to first committed token p50 / p99 (linear interpolation
  between order statistics, numpy's default percentile rule);
- nfe_per_request: mean forwards per request; tokens_per_forward: all output tokens / all
  forwards (a dLLM's parallelism; 1.0 for AR decoding, less for a dLLM's extra forwards);
  tokens_per_step: all output tokens / all denoising steps.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from .records import RequestRecord


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; ValueError on no values."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q!r}")
    xs = sorted(values)
    rank = (len(xs) - 1) * q / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


@dataclass(frozen=True)
class Summary:
    requests: int
    scored: int
    accuracy: float | None
    output_tokens: int
    span_s: float
    output_tokens_per_s: float | None
    latency_p50_s: float
    latency_p99_s: float
    ttft_p50_s: float | None
    ttft_p99_s: float | None
    nfe_per_request: float
    tokens_per_forward: float | None
    tokens_per_step: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def summarize(records: Sequence[RequestRecord]) -> Summary:
    if not records:
        raise ValueError("no records to summarize")
    ids = [r.request_id for r in records]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"duplicate request ids {dup[:5]}")
    scored = [r for r in records if r.correct is not None]
    out_tokens = sum(r.output_tokens for r in records)
    span = max(r.end_s for r in records) - min(r.start_s for r in records)
    latencies = [r.latency_s for r in records]
    ttfts = [r.ttft_s for r in records if r.ttft_s is not None]
    nfe = sum(r.nfe for r in records)
    return Summary(
        requests=len(records),
        scored=len(scored),
        accuracy=_ratio(sum(bool(r.correct) for r in scored), len(scored)),
        output_tokens=out_tokens,
        span_s=span,
        output_tokens_per_s=_ratio(out_tokens, span),
        latency_p50_s=percentile(latencies, 50),
        latency_p99_s=percentile(latencies, 99),
        ttft_p50_s=percentile(ttfts, 50) if ttfts else None,
        ttft_p99_s=percentile(ttfts, 99) if ttfts else None,
        nfe_per_request=nfe / len(records),
        tokens_per_forward=_ratio(out_tokens, nfe),
        tokens_per_step=_ratio(out_tokens, sum(r.steps for r in records)),
    )
