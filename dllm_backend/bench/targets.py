"""The issue's three speed targets, computed from benchmark results.

- dllm_vs_ar: a dLLM's fastest vLLM point that is as accurate as its autoregressive twin
  (within one accuracy point) over the twin's greedy vLLM throughput; goal 3x.
- plugin_vs_reference: the vLLM plugin over the slow reference generator on the same decoding
  point, with the fraction of requests whose output tokens agree; goal 10x.
- concurrency: a vLLM point's throughput at concurrency 16 over concurrency 1; goal 6x.

Every ratio is of output tokens/s (`Summary.output_tokens_per_s`). The AR twin is any result
decoded with `greedy`; every other result is a dLLM's.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Sequence

from .records import RequestRecord
from .report import PointResult
from .suite import RUNNERS
from .sweep import GREEDY, SweepPoint

GOAL_DLLM_VS_AR = 3.0
GOAL_PLUGIN_VS_REFERENCE = 10.0
GOAL_CONCURRENCY = 6.0
HIGH_CONCURRENCY = 16
# A dLLM point counts as "as accurate as AR" when at most one accuracy point (of 100) below it.
ACCURACY_SLACK = 0.01
# NOTE: 0.99 - 0.01 is 0.9800000000000001 in floating point; without this a dLLM scoring exactly
# one point below AR would be refused.
_EPS = 1e-9


@dataclass(frozen=True)
class TargetResult:
    name: str  # "dllm_vs_ar" | "plugin_vs_reference" | "concurrency"
    model: str
    detail: str  # which points were compared, and anything that qualifies the ratio
    value: float | None  # the ratio; None when it could not be computed
    goal: float
    met: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------- helpers shared with plots.py


def base_point(point: SweepPoint) -> SweepPoint:
    """The point with its concurrency cleared: what stays the same along a concurrency sweep."""
    return replace(point, concurrency=1)


def is_ar(result: PointResult) -> bool:
    return result.point.algorithm == GREEDY


def models_in_order(results: Sequence[PointResult], ar: bool) -> list[str]:
    """The AR (ar=True) or dLLM (ar=False) model names, in order of first appearance."""
    return list(dict.fromkeys(r.model for r in results if is_ar(r) == ar))


def tok_s(result: PointResult) -> float | None:
    return result.summary.output_tokens_per_s


def check_results(results: Sequence[PointResult]) -> None:
    """ValueError on an unknown runner or on two results for one (model, runner, point): every
    selection below picks "the" result for a point, which would otherwise depend on order."""
    seen: set[tuple[str, str, SweepPoint]] = set()
    for r in results:
        if r.runner not in RUNNERS:
            raise ValueError(f"unknown runner {r.runner!r} (model {r.model!r}); valid: {', '.join(RUNNERS.names())}")
        key = (r.model, r.runner, r.point)
        if key in seen:
            raise ValueError(f"duplicate result for model {r.model!r}, runner {r.runner!r}, point {r.point.label!r}")
        seen.add(key)


def token_match(a: Sequence[RequestRecord], b: Sequence[RequestRecord]) -> tuple[int, int]:
    """(requests whose output ids agree, requests compared), pairing records by request_id.

    Only requests both runs kept output ids for are compared.
    """
    ids_a = {r.request_id: r.output_ids for r in a}
    ids_b = {r.request_id: r.output_ids for r in b}
    pairs = [(ids_a[i], ids_b[i]) for i in ids_a.keys() & ids_b.keys()]
    pairs = [(x, y) for x, y in pairs if x is not None and y is not None]
    return sum(tuple(x) == tuple(y) for x, y in pairs), len(pairs)


def _pct(x: float | None) -> str:
    return "unscored" if x is None else f"{100 * x:.1f}%"


def _tps(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def _ratio(num: float | None, den: float | None) -> float | None:
    return None if num is None or not den else num / den


def _met(value: float | None, goal: float) -> bool:
    return value is not None and value >= goal


# ---------------------------------------------------------------- dllm_vs_ar


def _dllm_vs_ar(results: Sequence[PointResult]) -> list[TargetResult]:
    vllm = [r for r in results if r.runner == "vllm"]
    out: list[TargetResult] = []
    for model in models_in_order(vllm, ar=False):
        for ar_model in models_in_order(vllm, ar=True):  # normally one twin; each is compared
            out.extend(_dllm_vs_one_ar(vllm, model, ar_model))
    return out


def _dllm_vs_one_ar(vllm: Sequence[PointResult], model: str, ar_model: str) -> list[TargetResult]:
    def result(detail: str, value: float | None = None, gated: bool = True) -> TargetResult:
        # an ungated ratio is reported for information only: it never meets the target
        return TargetResult("dllm_vs_ar", model, detail, value, GOAL_DLLM_VS_AR, gated and _met(value, GOAL_DLLM_VS_AR))

    ar_at = {r.point.concurrency: r for r in vllm if r.model == ar_model and is_ar(r)}
    mine = [r for r in vllm if r.model == model and tok_s(r) is not None]
    shared = sorted(ar_at.keys() & {r.point.concurrency for r in mine})
    if not shared:
        return [result(f"no {ar_model} greedy vllm point at a concurrency this model ran")]
    conc = shared[-1]  # the highest: the throughput regime the target is about
    ar = ar_at[conc]
    ar_acc, ar_tps = ar.summary.accuracy, tok_s(ar)
    vs = f"vs {ar_model} greedy {_tps(ar_tps)} tok/s, acc {_pct(ar_acc)} (conc {conc})"
    if ar_tps is None:
        return [result(f"{ar_model} greedy throughput unknown (conc {conc})")]
    candidates = [r for r in mine if r.point.concurrency == conc]
    gated = [] if ar_acc is None else [
        r for r in candidates
        if r.summary.accuracy is not None and r.summary.accuracy >= ar_acc - ACCURACY_SLACK - _EPS
    ]
    if gated:
        best = max(gated, key=tok_s)
        detail = f"{best.point.label}: {_tps(tok_s(best))} tok/s, acc {_pct(best.summary.accuracy)} {vs}"
        return [result(detail, _ratio(tok_s(best), ar_tps))]
    fastest = max(candidates, key=tok_s)
    why = "AR accuracy unscored" if ar_acc is None else "no point within 1 accuracy point of AR"
    return [
        result(f"{why} {vs}"),
        result(f"IGNORING ACCURACY: {fastest.point.label}: {_tps(tok_s(fastest))} tok/s, "
               f"acc {_pct(fastest.summary.accuracy)} {vs}", _ratio(tok_s(fastest), ar_tps), gated=False),
    ]


# ---------------------------------------------------------------- plugin_vs_reference


def _plugin_vs_reference(results: Sequence[PointResult]) -> list[TargetResult]:
    out: list[TargetResult] = []
    for ref in (r for r in results if r.runner == "reference" and r.point.concurrency == 1):
        point = base_point(ref.point)
        vllm_at = {r.point.concurrency: r for r in results
                   if r.runner == "vllm" and r.model == ref.model and base_point(r.point) == point}
        if not vllm_at:
            continue
        # concurrency 1 is like for like; the highest shows what batching adds on top
        for conc in sorted({1, max(vllm_at)} & vllm_at.keys()):
            out.append(_plugin_row(ref, vllm_at[conc]))
    return out


def _plugin_row(ref: PointResult, vllm: PointResult) -> TargetResult:
    value = _ratio(tok_s(vllm), tok_s(ref))
    same, compared = token_match(vllm.records, ref.records)
    match = (f"tokens match {same}/{compared} ({100 * same / compared:.1f}%)" if compared
             else "tokens not compared (no output ids)")
    detail = (f"{base_point(ref.point).label}: vllm conc {vllm.point.concurrency} {_tps(tok_s(vllm))} tok/s "
              f"vs reference conc 1 {_tps(tok_s(ref))} tok/s; {match}")
    return TargetResult("plugin_vs_reference", ref.model, detail, value, GOAL_PLUGIN_VS_REFERENCE,
                        _met(value, GOAL_PLUGIN_VS_REFERENCE))


# ---------------------------------------------------------------- concurrency


def _concurrency(results: Sequence[PointResult]) -> list[TargetResult]:
    groups: dict[tuple[str, SweepPoint], dict[int, PointResult]] = {}
    for r in results:
        if r.runner == "vllm":
            groups.setdefault((r.model, base_point(r.point)), {})[r.point.concurrency] = r
    out: list[TargetResult] = []
    for (model, point), at in groups.items():
        if 1 not in at or HIGH_CONCURRENCY not in at:
            continue
        low, high = tok_s(at[1]), tok_s(at[HIGH_CONCURRENCY])
        value = _ratio(high, low)
        detail = f"{point.label}: {_tps(high)} tok/s at conc {HIGH_CONCURRENCY} vs {_tps(low)} at conc 1"
        out.append(TargetResult("concurrency", model, detail, value, GOAL_CONCURRENCY, _met(value, GOAL_CONCURRENCY)))
    return out


# ---------------------------------------------------------------- public


def evaluate_targets(results: Sequence[PointResult]) -> list[TargetResult]:
    """Every target row the results allow, in the order dllm_vs_ar, plugin_vs_reference, concurrency."""
    check_results(results)
    return [*_dllm_vs_ar(results), *_plugin_vs_reference(results), *_concurrency(results)]


def targets_markdown(targets: Sequence[TargetResult]) -> str:
    lines = ["| target | model | detail | ratio | goal | met |", "|---|---|---|---|---|---|"]
    for t in targets:
        ratio = "-" if t.value is None else f"{t.value:.2f}x"
        cells = (t.name, t.model, t.detail.replace("|", "\\|"), ratio, f"{t.goal:g}x", "✓" if t.met else "✗")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
