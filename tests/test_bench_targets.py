"""Bench targets: the three ratios from hand-made results with known throughput and accuracy."""
from __future__ import annotations

import pytest

from dllm_backend.bench import PointResult, RequestRecord, SweepPoint
from dllm_backend.bench.targets import TargetResult, evaluate_targets, targets_markdown, token_match

AR, LLADA = "qwen3-ar-tiny-digits", "llada-tiny-digits"


def _result(model: str, point: SweepPoint, tps: float, acc: float, runner: str = "vllm",
            outputs: list[tuple[int, ...] | None] | None = None) -> PointResult:
    """100 requests of 10 tokens spanning 1000/tps seconds (so `tps` output tokens/s), the first
    round(100 * acc) correct. `outputs` sets the first requests' output ids."""
    span = 1000 / tps
    outputs = outputs or []
    records = [
        RequestRecord(f"{i}", prompt_tokens=5, output_tokens=10, start_s=0.0, first_token_s=None, end_s=span,
                      nfe=10, steps=10, correct=i < round(100 * acc),
                      output_ids=outputs[i] if i < len(outputs) else None)
        for i in range(100)
    ]
    return PointResult.from_records(model, point, records, runner=runner)


def _thr(t: float, conc: int = 16) -> SweepPoint:
    return SweepPoint("threshold", (("threshold", t),), concurrency=conc)


def _greedy(conc: int) -> SweepPoint:
    return SweepPoint("greedy", concurrency=conc)


def _only(targets: list[TargetResult], name: str) -> list[TargetResult]:
    return [t for t in targets if t.name == name]


def _ar_baseline(acc: float = 0.98) -> list[PointResult]:
    return [_result(AR, _greedy(1), 40.0, acc), _result(AR, _greedy(16), 100.0, acc)]


def test_dllm_vs_ar_picks_fastest_point_within_one_accuracy_point() -> None:
    results = [
        *_ar_baseline(0.98),
        _result(LLADA, _thr(0.9), 250.0, 0.97),  # exactly one point below AR: allowed
        _result(LLADA, _thr(0.5), 400.0, 0.96),  # faster but two points below: refused
        _result(LLADA, SweepPoint("low_confidence", concurrency=16), 150.0, 0.99),
        _result(LLADA, _thr(0.1, conc=1), 10_000.0, 1.0),  # not the highest concurrency: ignored
    ]
    [t] = _only(evaluate_targets(results), "dllm_vs_ar")
    assert t.model == LLADA and t.goal == 3.0
    assert t.value == pytest.approx(2.5) and not t.met
    assert t.detail.startswith("threshold threshold=0.9 conc=16: 250.0 tok/s, acc 97.0% vs qwen3-ar-tiny-digits")


def test_dllm_vs_ar_takes_the_faster_point_once_it_is_accurate_enough() -> None:
    results = [*_ar_baseline(0.98), _result(LLADA, _thr(0.9), 250.0, 0.97), _result(LLADA, _thr(0.5), 400.0, 0.975)]
    [t] = _only(evaluate_targets(results), "dllm_vs_ar")
    assert t.value == pytest.approx(4.0) and t.met
    assert t.detail.startswith("threshold threshold=0.5 conc=16")


def test_dllm_vs_ar_without_an_accurate_point_reports_the_ungated_ratio_flagged() -> None:
    results = [*_ar_baseline(0.98), _result(LLADA, _thr(0.9), 250.0, 0.90), _result(LLADA, _thr(0.5), 400.0, 0.5)]
    gated, ungated = _only(evaluate_targets(results), "dllm_vs_ar")
    assert gated.value is None and not gated.met
    assert gated.detail.startswith("no point within 1 accuracy point of AR")
    assert ungated.value == pytest.approx(4.0)
    assert not ungated.met  # above the goal, but only by giving up accuracy
    assert ungated.detail.startswith("IGNORING ACCURACY: threshold threshold=0.5 conc=16: 400.0 tok/s, acc 50.0%")


def test_dllm_vs_ar_uses_highest_concurrency_both_ran() -> None:
    # the dLLM ran only concurrency 1: compared with the AR point at concurrency 1
    results = [*_ar_baseline(0.98), _result(LLADA, _thr(0.9, conc=1), 160.0, 0.99)]
    [t] = _only(evaluate_targets(results), "dllm_vs_ar")
    assert t.value == pytest.approx(4.0) and t.met
    assert "(conc 1)" in t.detail


def test_plugin_vs_reference_ratios_and_token_match() -> None:
    ref_out = [(1, 2), (3, 4), (5, 6), (7, 8)]
    vllm_out = [(1, 2), (3, 4), (5, 9), (7, 8)]  # request "2" differs
    point = SweepPoint("low_confidence")
    results = [
        _result(LLADA, point, 10.0, 0.5, runner="reference", outputs=ref_out),
        _result(LLADA, point, 50.0, 0.5, outputs=vllm_out),
        _result(LLADA, SweepPoint("low_confidence", concurrency=4), 80.0, 0.5),
        _result(LLADA, SweepPoint("low_confidence", concurrency=16), 200.0, 0.5, outputs=ref_out),
        _result(LLADA, _thr(0.9, conc=1), 300.0, 0.5),  # no reference run of this point: no row
    ]
    conc1, conc16 = _only(evaluate_targets(results), "plugin_vs_reference")
    assert (conc1.value, conc1.met) == (pytest.approx(5.0), False)
    assert conc1.detail == ("low_confidence: vllm conc 1 50.0 tok/s vs reference conc 1 10.0 tok/s; "
                            "tokens match 3/4 (75.0%)")
    assert (conc16.value, conc16.met) == (pytest.approx(20.0), True)
    assert conc16.detail.endswith("tokens match 4/4 (100.0%)")


def test_token_match_pairs_by_request_id_and_skips_unkept_outputs() -> None:
    def rec(rid: str, ids: tuple[int, ...] | None) -> RequestRecord:
        return RequestRecord(rid, 1, 2, 0.0, None, 1.0, 1, 1, output_ids=ids)

    a = [rec("x", (1, 2)), rec("y", (3,)), rec("z", None), rec("only-a", (0,))]
    b = [rec("y", (3,)), rec("x", (1, 3)), rec("z", (5,)), rec("only-b", (0,))]
    assert token_match(a, b) == (1, 2)  # x differs, y agrees; z unkept on one side; the rest unpaired
    assert token_match(a[2:3], b) == (0, 0)


def test_concurrency_ratio_needs_both_1_and_16() -> None:
    results = [
        _result(LLADA, _thr(0.9, conc=1), 100.0, 0.5),
        _result(LLADA, _thr(0.9, conc=4), 400.0, 0.5),
        _result(LLADA, _thr(0.9, conc=16), 700.0, 0.5),
        _result(LLADA, _thr(0.5, conc=1), 100.0, 0.5),
        _result(LLADA, _thr(0.5, conc=4), 300.0, 0.5),  # no concurrency 16: no row
        _result(LLADA, _thr(0.9, conc=1), 10.0, 0.5, runner="reference"),  # reference: not a row
    ]
    [t] = _only(evaluate_targets(results), "concurrency")
    assert (t.model, t.value, t.goal, t.met) == (LLADA, pytest.approx(7.0), 6.0, True)
    assert t.detail == "threshold threshold=0.9: 700.0 tok/s at conc 16 vs 100.0 at conc 1"


def test_markdown_and_json() -> None:
    targets = [
        TargetResult("concurrency", LLADA, "a | b", 6.5, 6.0, True),
        TargetResult("dllm_vs_ar", LLADA, "none", None, 3.0, False),
    ]
    assert targets_markdown(targets).splitlines() == [
        "| target | model | detail | ratio | goal | met |",
        "|---|---|---|---|---|---|",
        "| concurrency | llada-tiny-digits | a \\| b | 6.50x | 6x | ✓ |",
        "| dllm_vs_ar | llada-tiny-digits | none | - | 3x | ✗ |",
    ]
    assert targets[1].to_json() == {"name": "dllm_vs_ar", "model": LLADA, "detail": "none", "value": None,
                                    "goal": 3.0, "met": False}


def test_bad_results_are_refused() -> None:
    r = _result(LLADA, _thr(0.9), 10.0, 0.5)
    with pytest.raises(ValueError, match="unknown runner 'sglang'"):
        evaluate_targets([_result(LLADA, _thr(0.9), 10.0, 0.5, runner="sglang")])
    with pytest.raises(ValueError, match="duplicate result for model 'llada-tiny-digits', runner 'vllm'"):
        evaluate_targets([r, r])
