"""Where a benchmark point's time goes inside the vLLM engine: cProfile around the bench's closed loop.

Runs one sweep point of `dllm-backend bench` (same runner, same closed loop) under cProfile
and splits the wall time of `LLMEngine.step` into scheduler, input preparation, model
forward, logits, denoising policy / sampling and output processing, then lists the
heaviest functions. A diagnostic, not a test:

    .venv/bin/python examples/profile_engine.py checkpoints/sdar-tiny-digits --algorithm threshold --threshold 0.9
    .venv/bin/python examples/profile_engine.py checkpoints/qwen3-ar-tiny-digits --algorithm greedy
"""
from __future__ import annotations

import argparse
import cProfile
import pstats

# bucket -> (path fragment, function name): the outermost call of each part of a step
BUCKETS: dict[str, tuple[tuple[str, str], ...]] = {
    "engine step (total)": (("v1/engine/llm_engine.py", "step"),),
    "scheduler": (("v1/core/sched/scheduler.py", "schedule"), ("v1/core/sched/scheduler.py", "update_from_output")),
    "input preparation": (("worker/gpu_model_runner.py", "_prepare_inputs"),),
    "model forward": (("models/", "forward"),),
    "logits (LM head)": (("models/", "compute_logits"),),
    "denoising policy": (("vllm_adapter/runner.py", "_policy_steps"),),
    "AR sampling": (("v1/sample/sampler.py", "forward"),),
    "output processing": (("v1/engine/output_processor.py", "process_outputs"),),
}


def _bucket_seconds(stats: pstats.Stats, keys: tuple[tuple[str, str], ...]) -> float:
    """Cumulative seconds of the matching functions, counting only outermost frames (a model's
    `forward` calls its layers' `forward`s: the top-level call is the one with the largest time)."""
    best: dict[str, float] = {}
    for (path, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for fragment, func in keys:
            if fragment in path and name == func:
                best[fragment + func] = max(best.get(fragment + func, 0.0), ct)
    return sum(best.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir")
    parser.add_argument("--eval", default="checkpoints/heldout.jsonl")
    parser.add_argument("--algorithm", default="low_confidence")
    parser.add_argument("--threshold", type=float, default=None)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--limit", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()

    from dllm_backend.train.tasks import load_examples
    from dllm_backend.bench.metrics import summarize
    from dllm_backend.bench.sweep import SweepPoint
    from dllm_backend.bench.vllm_runner import VllmRunner

    knobs = () if args.threshold is None else (("threshold", args.threshold),)
    point = SweepPoint(args.algorithm, knobs, concurrency=args.concurrency)
    examples = load_examples(args.eval, args.limit)
    runner = VllmRunner(args.model_dir)
    runner.warm_up(examples, point, args.max_tokens)
    profiler = cProfile.Profile()
    profiler.enable()
    records = runner.run_point(examples, point, args.max_tokens)
    profiler.disable()
    s = summarize(records)
    print(f"{args.model_dir} {point.label}: {len(records)} requests, {s.output_tokens_per_s:.1f} tok/s, "
          f"NFE/request {s.nfe_per_request:.1f}, tokens/forward {s.tokens_per_forward:.2f} (under cProfile)")
    stats = pstats.Stats(profiler)
    total = _bucket_seconds(stats, BUCKETS["engine step (total)"])
    for name, keys in BUCKETS.items():
        sec = _bucket_seconds(stats, keys)
        if sec:
            print(f"  {name:24s} {sec:8.2f} s  {100 * sec / total:5.1f}%")
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
