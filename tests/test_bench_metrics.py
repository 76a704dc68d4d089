"""Benchmark harness: metrics from hand-made records, sweeps, writers (no timing assertions)."""
from __future__ import annotations

import json

import pytest

from dllm_backend.bench import (
    DEFAULT_SWEEP, PointResult, RequestRecord, Sweep, SweepPoint, markdown_table, percentile,
    summarize, write_json,
)


def _rec(i: int, start: float, first: float | None, end: float, out: int, nfe: int, steps: int,
         correct: bool | None) -> RequestRecord:
    return RequestRecord(f"r{i}", prompt_tokens=10, output_tokens=out, start_s=start,
                         first_token_s=first, end_s=end, nfe=nfe, steps=steps, correct=correct)


RECORDS = [
    _rec(0, 0.0, 0.5, 2.0, out=20, nfe=10, steps=8, correct=True),
    _rec(1, 1.0, 1.25, 4.0, out=16, nfe=8, steps=8, correct=False),
    _rec(2, 2.0, None, 3.0, out=24, nfe=12, steps=12, correct=True),
    _rec(3, 3.0, 3.5, 10.0, out=20, nfe=20, steps=20, correct=None),  # not scored
]


def test_summary_of_hand_made_records() -> None:
    s = summarize(RECORDS)
    assert s.requests == 4 and s.scored == 3
    assert s.accuracy == pytest.approx(2 / 3)
    assert s.output_tokens == 80
    assert s.span_s == 10.0  # first start 0.0 .. last end 10.0
    assert s.output_tokens_per_s == pytest.approx(8.0)
    # latencies 2, 3, 1, 7 -> sorted 1, 2, 3, 7
    assert s.latency_p50_s == pytest.approx(2.5)
    assert s.latency_p99_s == pytest.approx(3 + 0.97 * 4)  # rank 2.97 between 3 and 7
    # time to first token 0.5, 0.25, 0.5 (r2 unknown) -> sorted 0.25, 0.5, 0.5
    assert s.ttft_p50_s == pytest.approx(0.5)
    assert s.nfe_per_request == pytest.approx(12.5)
    assert s.tokens_per_forward == pytest.approx(80 / 50)
    assert s.tokens_per_step == pytest.approx(80 / 48)


def test_percentile_matches_linear_rule() -> None:
    assert percentile([5.0], 99) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 50) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 90) == pytest.approx(4.6)
    assert percentile([10.0, 0.0], 25) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_unscored_run_has_no_accuracy() -> None:
    s = summarize([_rec(0, 0.0, None, 1.0, 4, 0, 0, None)])
    assert s.accuracy is None and s.tokens_per_forward is None and s.ttft_p50_s is None


def test_bad_records_are_refused() -> None:
    with pytest.raises(ValueError, match="end_s 1.0 is before start_s 2.0"):
        _rec(0, 2.0, None, 1.0, 1, 1, 1, True)
    with pytest.raises(ValueError, match="first_token_s 5.0 is outside"):
        _rec(0, 0.0, 5.0, 1.0, 1, 1, 1, True)
    with pytest.raises(ValueError, match="nfe must be a non-negative integer"):
        _rec(0, 0.0, None, 1.0, 1, -1, 1, True)
    with pytest.raises(ValueError, match=r"duplicate request ids \['r0'\]"):
        summarize([RECORDS[0], RECORDS[0]])


def test_sweep_expands_the_grid() -> None:
    sweep = Sweep(
        algorithms={"threshold": {"threshold": [0.9, 0.5]}, "low_confidence": {}, "greedy": {}},
        steps=(None, 2), block_sizes=(8,), cache_modes=("exact", "dual"), concurrency=(1, 4),
    )
    points = sweep.points()
    # threshold: 2 values x 2 steps x 1 block x 2 caches x 2 conc; low_confidence: 8; greedy: 2 conc
    assert len(points) == 16 + 8 + 2
    assert points[0] == SweepPoint("threshold", (("threshold", 0.9),), None, 8, "exact", 1)
    assert points[0].label == "threshold threshold=0.9 block=8"
    assert points[-1] == SweepPoint("greedy", concurrency=4)
    assert points[1].decode_config().threshold == 0.9
    assert [p.label for p in DEFAULT_SWEEP.points()] == [
        "low_confidence", "threshold threshold=0.9", "threshold threshold=0.7",
        "threshold threshold=0.5", "factor factor=1", "eb_sampler gamma=0.1",
    ]
    same = Sweep.from_dict({"algorithms": {"threshold": {"threshold": [0.9, 0.5]}, "low_confidence": {},
                                           "greedy": {}}, "steps": [None, 2], "block_sizes": [8],
                            "cache_modes": ["exact", "dual"], "concurrency": [1, 4]})
    assert same.points() == points


def test_sweep_errors_name_the_value() -> None:
    with pytest.raises(ValueError, match="unknown cache_mode 'full'"):
        SweepPoint("threshold", cache_mode="full")
    with pytest.raises(ValueError, match="unknown knob 'tau'"):
        SweepPoint("threshold", (("tau", 0.9),))
    with pytest.raises(ValueError, match="threshold must be in"):
        SweepPoint("threshold", (("threshold", 1.5),))
    with pytest.raises(ValueError, match="nonexistent"):
        Sweep(algorithms={"nonexistent": {}})
    with pytest.raises(ValueError, match="unknown sweep keys \\['gammas'\\]"):
        Sweep.from_dict({"algorithms": {}, "gammas": [1]})
    with pytest.raises(ValueError, match="takes no knobs"):
        SweepPoint("greedy", steps=2)


def test_writers(tmp_path) -> None:
    result = PointResult.from_records("tiny", SweepPoint("threshold", (("threshold", 0.9),)), RECORDS)
    table = markdown_table([result])
    lines = table.splitlines()
    assert lines[0].startswith("| model | runner | decoding | accuracy | tokens/forward |")
    assert lines[2] == ("| tiny | reference | threshold threshold=0.9 | 66.7% | 1.60 | 1.67 | 12.5 | 8.0 | 2500.0 | "
                        "6880.0 | 500.0 |")
    write_json([result], tmp_path / "r.json", {"eval": "x"})
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["meta"] == {"eval": "x"}
    assert doc["results"][0]["runner"] == "reference"
    assert doc["results"][0]["point"]["knobs"] == {"threshold": 0.9}
    assert doc["results"][0]["summary"]["output_tokens"] == 80
    assert [r["request_id"] for r in doc["results"][0]["records"]] == ["r0", "r1", "r2", "r3"]
