"""Bench suites: parsing and validation, the default suite, and the run loop (with a stand-in runner)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dllm_backend.bench.records import RequestRecord
from dllm_backend.bench.suite import DEFAULT_SUITE, Suite, run_suite
from dllm_backend.bench.vllm_runner import extra_args
from dllm_backend.bench.sweep import SweepPoint

REPO = Path(__file__).resolve().parents[1]


def test_default_suite_names_committed_checkpoints_and_covers_every_axis() -> None:
    suite = Suite.load(DEFAULT_SUITE)
    assert (REPO / suite.eval).is_file()
    for job in suite.jobs:
        assert (REPO / job.model / "config.json").is_file(), job.model
    points = [(j.runner, p) for j in suite.jobs for p in j.sweep.points()]
    assert suite.num_points() == len(points)
    vllm = [p for r, p in points if r == "vllm"]
    assert {p.concurrency for p in vllm} == {1, 4, 16}
    assert {p.cache_mode for p in vllm} == {"exact", "prefix", "dual"}
    assert {p.algorithm for p in vllm} >= {"greedy", "low_confidence", "threshold", "factor", "eb_sampler"}
    assert {p.steps for p in vllm} > {None} and {p.block_size for p in vllm} > {None}
    assert all(p.concurrency == 1 for r, p in points if r == "reference")


def test_suite_rejects_bad_input_naming_it() -> None:
    base = {"eval": "e.jsonl", "jobs": [{"model": "m", "runner": "vllm", "sweep": {"algorithms": {"greedy": {}}}}]}
    with pytest.raises(ValueError, match=r"unknown suite keys \['evals'\]"):
        Suite.from_dict({**base, "evals": "x"})
    with pytest.raises(ValueError, match="unknown benchmark runner 'tgi'"):
        Suite.from_dict({**base, "jobs": [{**base["jobs"][0], "runner": "tgi"}]})
    with pytest.raises(ValueError, match=r"job 0: unknown keys \['models'\]"):
        Suite.from_dict({**base, "jobs": [{**base["jobs"][0], "models": "x"}]})
    with pytest.raises(ValueError, match="limit must be a positive integer or null, got 0"):
        Suite.from_dict({**base, "limit": 0})
    with pytest.raises(ValueError, match="at least one job"):
        Suite.from_dict({**base, "jobs": []})


def test_extra_args_carry_every_axis_of_a_point() -> None:
    point = SweepPoint("threshold", (("threshold", 0.7),), steps=4, block_size=8, cache_mode="dual", concurrency=4)
    assert extra_args(point) == {"algorithm": "threshold", "threshold": 0.7, "steps": 4, "block_size": 8,
                                 "cache_mode": "dual"}
    assert extra_args(SweepPoint("low_confidence")) == {"algorithm": "low_confidence", "cache_mode": "exact"}


class _FakeRunner:
    """Answers every example with a record whose size depends on the point; logs its calls."""

    def __init__(self, name: str, model: Path, log: list) -> None:
        self.name, self.model, self.log = name, model, log

    def warm_up(self, examples, point, max_tokens) -> None:
        self.log.append(("warm", self.name, self.model.name))

    def run_point(self, examples, point, max_tokens):
        self.log.append(("run", self.name, self.model.name, point.label, len(examples)))
        return [RequestRecord(str(i), 3, point.concurrency, 0.0, None, 1.0, 1, 1, correct=i % 2 == 0)
                for i in range(len(examples))]

    def close(self) -> None:
        self.log.append(("close", self.name, self.model.name))


def test_run_suite_loads_each_model_once_warms_once_and_reports_progress(tmp_path) -> None:
    eval_path = tmp_path / "e.jsonl"
    eval_path.write_text("".join('{"task": "copy", "prompt": "copy: %d", "answer": "%d"}\n' % (i, i) for i in range(6)))
    suite = Suite.from_dict({"eval": str(eval_path), "limit": 4, "jobs": [
        {"model": "a", "runner": "vllm", "sweep": {"algorithms": {"low_confidence": {}}, "concurrency": [1, 2]}},
        {"model": "b", "runner": "reference", "limit": 2, "sweep": {"algorithms": {"low_confidence": {}}}},
        {"model": "a", "runner": "vllm", "sweep": {"algorithms": {"threshold": {"threshold": [0.9]}}}},
    ]})
    log, lines = [], []
    results = run_suite(suite, lines.append, lambda name, model: _FakeRunner(name, model, log))
    assert log == [
        ("warm", "reference", "b"), ("run", "reference", "b", "low_confidence", 2), ("close", "reference", "b"),
        ("warm", "vllm", "a"), ("run", "vllm", "a", "low_confidence", 4), ("run", "vllm", "a", "low_confidence conc=2", 4),
        ("run", "vllm", "a", "threshold threshold=0.9", 4), ("close", "vllm", "a"),
    ]
    assert [(r.model, r.runner, r.summary.accuracy) for r in results] == [
        ("b", "reference", 0.5), ("a", "vllm", 0.5), ("a", "vllm", 0.5), ("a", "vllm", 0.5)]
    assert [line.split(" (")[0] for line in lines if line.startswith("[bench ")] == [
        "[bench 1/4] b reference low_confidence: acc 50.0% 2.0 tok/s",
        "[bench 2/4] a vllm low_confidence: acc 50.0% 4.0 tok/s",
        "[bench 3/4] a vllm low_confidence conc=2: acc 50.0% 8.0 tok/s",
        "[bench 4/4] a vllm threshold threshold=0.9: acc 50.0% 4.0 tok/s",
    ]


def test_check_models_refuses_a_block_size_the_family_rejects_before_running() -> None:
    suite = Suite.from_dict({"eval": str(REPO / "checkpoints/heldout.jsonl"), "jobs": [
        {"model": str(REPO / "checkpoints/sdar-tiny-digits"), "runner": "vllm",
         "sweep": {"algorithms": {"threshold": {"threshold": [0.9]}}, "block_sizes": [8]}}]})
    with pytest.raises(ValueError, match=r"job 0 \(sdar-tiny-digits, threshold threshold=0.9 block=8\): "
                                         r"block_size 8 is not valid for SDARForCausalLM"):
        run_suite(suite, lambda _: None)
    default = Suite.load(DEFAULT_SUITE)
    dataclasses.replace(default, jobs=tuple(dataclasses.replace(j, model=REPO / j.model) for j in default.jobs)).check_models()
