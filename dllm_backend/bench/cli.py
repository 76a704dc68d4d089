"""`dllm-backend bench` (reference runner) and `dllm-backend train-tiny`: argument parsers and entry functions.

`cli.py` wires them: `add_bench_args(subparser)` + `run_bench(args)`, `add_train_args(subparser)`
+ `run_train(args)`; both return a process exit code.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Sequence

from .sweep import DEFAULT_SWEEP, Sweep

DEFAULT_MAX_TOKENS = 24  # the trained checkpoints' canvas (answers are <= 21 tokens)


def load_examples(path: str | Path, limit: int | None = None):
    from ..train.tasks import Example

    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    out = [Example(task=r["task"], prompt=r["prompt"], answer=r["answer"]) for r in rows]
    return out[:limit] if limit is not None else out


def add_bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dirs", nargs="+", help="checkpoint directories (dLLM or the Qwen3 AR twin)")
    p.add_argument("--eval", required=True, help="JSONL of {task, prompt, answer}, e.g. checkpoints/heldout.jsonl")
    p.add_argument("--limit", type=int, default=None, help="use the first N examples")
    p.add_argument("--sweep", default=None, help="sweep JSON (see bench/sweep.py); default: DEFAULT_SWEEP")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    p.add_argument("--out-json", default=None)
    p.add_argument("--out-md", default=None)


def run_bench(args: argparse.Namespace) -> int:
    from .reference_runner import load, run_point
    from .report import PointResult, markdown_table, write_json, write_markdown
    from .sweep import GREEDY, SweepPoint

    examples = load_examples(args.eval, args.limit)
    sweep = Sweep.from_dict(json.loads(Path(args.sweep).read_text())) if args.sweep else DEFAULT_SWEEP
    results = []
    for model_dir in args.model_dirs:
        model = load(model_dir)
        points = [SweepPoint(GREEDY)] if model.generator == GREEDY else [
            p for p in sweep.points() if p.algorithm != GREEDY
        ]
        for point in points:
            records = run_point(model_dir, examples, point, args.max_tokens, model)
            results.append(PointResult.from_records(Path(model_dir).name, point, records))
    if args.out_json:
        write_json(results, args.out_json, {"eval": args.eval, "examples": len(examples), "max_tokens": args.max_tokens})
    if args.out_md:
        write_markdown(results, args.out_md)
    print(markdown_table(results), end="")
    return 0


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", help="llada | sdar | ar")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="default: the recipe's")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock cap (stops early)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--state-path", default=None, help="save the training state here; resume from it if present")


def run_train(args: argparse.Namespace) -> int:
    from ..train import train_tiny

    report = train_tiny(args.kind, args.out_dir, seed=args.seed, minutes=args.minutes,
                        steps=args.steps, threads=args.threads, state_path=args.state_path)
    print(report)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Stand-alone entry (`python -m dllm_backend.bench.cli bench|train-tiny ...`) until cli.py wires it."""
    parser = argparse.ArgumentParser(prog="dllm_backend.bench.cli")
    sub = parser.add_subparsers(dest="command", required=True)
    add_bench_args(sub.add_parser("bench"))
    add_train_args(sub.add_parser("train-tiny"))
    args = parser.parse_args(argv)
    return run_bench(args) if args.command == "bench" else run_train(args)


if __name__ == "__main__":
    raise SystemExit(main())
