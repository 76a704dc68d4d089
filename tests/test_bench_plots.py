"""Bench plots: which results each figure shows (exact), that the PNGs are written, the machine description."""
from __future__ import annotations

import subprocess
import sys

import pytest

from dllm_backend.bench import PointResult, RequestRecord, SweepPoint
from dllm_backend.bench.machine import machine_description
from dllm_backend.bench.plots import (
    CONCURRENCY_PNG, FRONTIER_PNG, STEPS_PNG, frontier_data, scaling_data, steps_data,
    write_plots,
)

AR, LLADA, SDAR = "qwen3-ar-tiny-digits", "llada-tiny-digits", "sdar-tiny-digits"


def _result(model: str, point: SweepPoint, tps: float, acc: float, runner: str = "vllm") -> PointResult:
    """10 requests of 10 tokens over 100/tps seconds (`tps` output tokens/s), round(10 * acc) correct."""
    records = [RequestRecord(f"{i}", 5, 10, 0.0, None, 100 / tps, 10, 10, correct=i < round(10 * acc))
               for i in range(10)]
    return PointResult.from_records(model, point, records, runner=runner)


def _p(alg: str, conc: int = 1, steps: int | None = None, block: int | None = None, **knobs: float) -> SweepPoint:
    return SweepPoint(alg, tuple(knobs.items()), steps=steps, block_size=block, concurrency=conc)


RESULTS = [
    _result(AR, _p("greedy", 1), 50.0, 1.0),
    _result(AR, _p("greedy", 16), 400.0, 1.0),
    _result(LLADA, _p("low_confidence", 1), 20.0, 0.5),
    _result(LLADA, _p("low_confidence", 16), 160.0, 0.5),
    _result(LLADA, _p("threshold", 16, threshold=0.9), 200.0, 0.4),
    _result(LLADA, _p("threshold", 16, threshold=0.5), 300.0, 0.3),
    _result(LLADA, _p("low_confidence", 16, steps=4), 320.0, 0.2),
    _result(LLADA, _p("low_confidence", 16, steps=8), 240.0, 0.3),
    _result(LLADA, _p("low_confidence", 16, steps=8, block=32), 250.0, 0.3),
    _result(LLADA, _p("low_confidence", 16, block=32), 150.0, 0.6),  # one token per step: x = 32
    _result(LLADA, _p("low_confidence", 1), 2.0, 0.5, runner="reference"),
    _result(SDAR, _p("threshold", 4, threshold=0.9), 100.0, 0.6),
]


def test_frontier_selects_vllm_default_shape_at_highest_concurrency() -> None:
    data = frontier_data(RESULTS)
    assert list(data) == [LLADA, SDAR]
    conc, series, ars = data[LLADA]
    assert conc == 16
    assert series == {
        "low_confidence": [(pytest.approx(160.0), 50.0, "")],
        "threshold": [(pytest.approx(200.0), 40.0, "threshold=0.9"), (pytest.approx(300.0), 30.0, "threshold=0.5")],
    }
    assert ars == [(f"{AR} greedy", pytest.approx(400.0), 100.0)]
    # SDAR ran concurrency 4 only; the AR twin did not, so its highest concurrency is shown and named
    assert data[SDAR][2] == [(f"{AR} greedy (conc 16)", pytest.approx(400.0), 100.0)]


def test_steps_data_uses_fixed_step_points_and_places_one_token_per_step_at_block_size() -> None:
    conc, series, left_out = steps_data(RESULTS)[LLADA]
    assert conc == 16
    assert left_out == 1  # low_confidence with default steps and default block: its x is unknown
    assert series == {
        "block=default cache=exact": [(4, 20.0, pytest.approx(320.0)), (8, 30.0, pytest.approx(240.0))],
        "block=32 cache=exact": [(8, 30.0, pytest.approx(250.0)), (32, 60.0, pytest.approx(150.0))],
    }
    assert SDAR not in steps_data(RESULTS)


def test_scaling_data_keeps_lines_with_two_concurrencies() -> None:
    data = scaling_data(RESULTS)
    assert set(data) == {AR, LLADA}  # SDAR ran one concurrency
    assert data[AR] == {("vllm", "greedy"): [(1, pytest.approx(50.0)), (16, pytest.approx(400.0))]}
    assert data[LLADA] == {("vllm", "low_confidence"): [(1, pytest.approx(20.0)), (16, pytest.approx(160.0))]}


def test_write_plots_writes_pngs_and_skips_empty_figures(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    paths = write_plots(RESULTS, tmp_path / "all")
    assert [p.name for p in paths] == [FRONTIER_PNG, STEPS_PNG, CONCURRENCY_PNG]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # no low_confidence point and a single concurrency: only the frontier has data
    few = [r for r in RESULTS if r.model == SDAR]
    assert [p.name for p in write_plots(few, tmp_path / "few")] == [FRONTIER_PNG]
    assert sorted(f.name for f in (tmp_path / "few").iterdir()) == [FRONTIER_PNG]
    assert write_plots([], tmp_path / "none") == []


def test_importing_plots_does_not_import_matplotlib() -> None:
    code = "import sys, dllm_backend.bench.plots; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_machine_description_keys() -> None:
    d = machine_description()
    assert set(d) == {"platform", "python", "torch", "torch_threads", "cpu_model", "logical_cores", "ram_gib", "vllm"}
    assert d["python"] == sys.version.split()[0]
    assert d["logical_cores"] is None or d["logical_cores"] >= 1
