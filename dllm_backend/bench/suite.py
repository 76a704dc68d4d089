"""A benchmark suite: which checkpoints run which sweeps through which runner, and the loop that runs it.

A suite is JSON (the default one is `suites/default.json`, the run behind docs/benchmarks.md):

    {"eval": "checkpoints/heldout.jsonl", "max_tokens": 24, "limit": null,
     "jobs": [{"model": "checkpoints/sdar-tiny-digits", "runner": "vllm", "limit": null,
               "sweep": {"algorithms": {"threshold": {"threshold": [0.9]}}, "concurrency": [1, 16]}}]}

A top-level "limit" is the default of every job's. Relative paths resolve against the current
directory. Jobs with the same (runner, model) share one loaded runner (one engine start per
checkpoint), which is warmed up before its first timed point.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..core.registry import Registry
from .report import PointResult
from .sweep import Sweep

# runner name -> (model_dir) -> object with warm_up / run_point / close
RUNNERS: Registry[Callable[[Path], Any]] = Registry("benchmark runner")


@RUNNERS.register("vllm")
def _vllm(model_dir: Path):
    from .vllm_runner import VllmRunner

    return VllmRunner(model_dir)


@RUNNERS.register("reference")
def _reference(model_dir: Path):
    from .reference_runner import ReferenceRunner

    return ReferenceRunner(model_dir)


DEFAULT_SUITE = Path(__file__).parent / "suites" / "default.json"


@dataclass(frozen=True)
class Job:
    model: Path
    runner: str
    sweep: Sweep
    limit: int | None = None  # first N examples of the eval set (None: all)

    def __post_init__(self) -> None:
        RUNNERS.get(self.runner)  # ValueError listing the runners
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1):
            raise ValueError(f"limit must be a positive integer or null, got {self.limit!r}")


@dataclass(frozen=True)
class Suite:
    eval: Path
    jobs: tuple[Job, ...]
    max_tokens: int = 24

    def __post_init__(self) -> None:
        if not self.jobs:
            raise ValueError("a suite needs at least one job")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be a positive integer, got {self.max_tokens!r}")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Suite":
        known, job_keys = {"eval", "jobs", "max_tokens", "limit"}, {"model", "runner", "sweep", "limit"}
        if unknown := sorted(set(d) - known):
            raise ValueError(f"unknown suite keys {unknown}; valid: {', '.join(sorted(known))}")
        jobs = []
        for i, j in enumerate(d.get("jobs") or ()):
            if unknown := sorted(set(j) - job_keys):
                raise ValueError(f"job {i}: unknown keys {unknown}; valid: {', '.join(sorted(job_keys))}")
            jobs.append(Job(Path(j["model"]), j["runner"], Sweep.from_dict(j["sweep"]), j.get("limit", d.get("limit"))))
        return cls(Path(d["eval"]), tuple(jobs), int(d.get("max_tokens", 24)))

    @classmethod
    def load(cls, path: str | Path) -> "Suite":
        return cls.from_dict(json.loads(Path(path).read_text()))

    def num_points(self) -> int:
        return sum(len(j.sweep.points()) for j in self.jobs)

    def check_models(self) -> None:
        """Fails before anything is timed: every model directory exists and every point's block
        size is one its family accepts (block-causal checkpoints only run their trained block)."""
        from ..core.families import FAMILIES, resolve_dir
        from ..train.checkpoint import checkpoint_architecture

        for i, job in enumerate(self.jobs):
            try:
                arch = checkpoint_architecture(job.model)
            except ValueError as exc:
                raise ValueError(f"job {i}: {exc}") from None
            if arch not in FAMILIES:
                continue  # the AR twin: greedy points only (checked by the sweep)
            family = resolve_dir(job.model)
            for point in job.sweep.points():
                if point.block_size is not None:
                    try:
                        family.check_block_size(point.block_size)
                    except ValueError as exc:
                        raise ValueError(f"job {i} ({job.model.name}, {point.label}): {exc}") from None


def run_suite(
    suite: Suite, progress: Callable[[str], None] = print, runner_factory: Callable[[str, Path], Any] | None = None,
) -> list[PointResult]:
    """Runs every job's points, one runner per (runner, model) at a time; reports progress per point."""
    from ..train.tasks import load_examples

    make = runner_factory or (lambda name, model: RUNNERS.get(name)(model))
    if runner_factory is None:
        suite.check_models()
    examples = load_examples(suite.eval)
    total, done, t0 = suite.num_points(), 0, time.perf_counter()
    results: list[PointResult] = []
    order = sorted(range(len(suite.jobs)), key=lambda i: (suite.jobs[i].runner, str(suite.jobs[i].model), i))
    current, key = None, None
    try:
        for i in order:
            job = suite.jobs[i]
            if key != (job.runner, job.model):
                if current is not None:
                    current.close()
                progress(f"[bench] loading {job.model.name} ({job.runner})")
                current, key, warm = make(job.runner, job.model), (job.runner, job.model), False
            subset = examples[: job.limit] if job.limit else examples
            for point in job.sweep.points():
                if not warm:
                    current.warm_up(subset, point, suite.max_tokens)
                    warm = True
                records = current.run_point(subset, point, suite.max_tokens)
                result = PointResult.from_records(job.model.name, point, records, runner=job.runner)
                results.append(result)
                done += 1
                s = result.summary
                progress(f"[bench {done}/{total}] {job.model.name} {job.runner} {point.label}: "
                         f"acc {100 * (s.accuracy or 0):.1f}% {s.output_tokens_per_s or 0:.1f} tok/s "
                         f"({time.perf_counter() - t0:.0f}s)")
    finally:
        if current is not None:
            current.close()
    return results

