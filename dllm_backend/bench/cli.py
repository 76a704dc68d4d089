"""`dllm-backend bench` (a suite through the vLLM and reference runners) and `dllm-backend train-tiny`: argument parsers and entry functions.

`cli.py` wires them: `add_bench_args(subparser)` + `run_bench(args)`, `add_train_args(subparser)`
+ `run_train(args)`; both return a process exit code.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from .sweep import DEFAULT_SWEEP, GREEDY, Sweep

DEFAULT_MAX_TOKENS = 24  # the trained checkpoints' canvas (answers are <= 21 tokens)


def add_bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dirs", nargs="*",
                   help="ad-hoc run: checkpoint directories (dLLM or the Qwen3 AR twin); without them the suite runs")
    p.add_argument("--suite", default=None, help="suite JSON (see bench/suite.py); default: the packaged default suite")
    p.add_argument("--runner", default="vllm", help="ad-hoc run: vllm | reference (comma-separated for both)")
    p.add_argument("--eval", default="checkpoints/heldout.jsonl", help="ad-hoc run: JSONL of {task, prompt, answer}")
    p.add_argument("--sweep", default=None, help="ad-hoc run: sweep JSON file (see bench/sweep.py); default: DEFAULT_SWEEP")
    p.add_argument("--concurrency", default=None, help="ad-hoc run: comma-separated concurrencies (overrides the sweep's)")
    p.add_argument("--limit", type=int, default=None, help="use the first N examples")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    p.add_argument("--out", default=None, help="folder for results.json, results.md and the PNG plots")
    p.add_argument("--doc", default=None, help="markdown document whose generated section is rewritten (docs/benchmarks.md)")


def _ad_hoc_suite(args: argparse.Namespace):
    from ..train.checkpoint import AR_ARCHITECTURE, checkpoint_architecture
    from .suite import Job, Suite

    sweep = Sweep.from_dict(json.loads(Path(args.sweep).read_text())) if args.sweep else DEFAULT_SWEEP
    if args.concurrency:
        sweep = replace(sweep, concurrency=tuple(int(c) for c in args.concurrency.split(",")))
    greedy = Sweep(algorithms={GREEDY: {}}, concurrency=sweep.concurrency)
    jobs = []
    for runner in args.runner.split(","):
        for d in args.model_dirs:
            job_sweep = greedy if checkpoint_architecture(d) == AR_ARCHITECTURE else sweep
            if runner == "reference":  # one request at a time
                job_sweep = replace(job_sweep, concurrency=(1,))
            jobs.append(Job(Path(d), runner, job_sweep, args.limit))
    return Suite(Path(args.eval), tuple(jobs), args.max_tokens)


def run_bench(args: argparse.Namespace) -> int:
    import shlex
    import sys
    import time

    from .document import render, update_document
    from .machine import machine_description
    from .report import markdown_table, write_json, write_records
    from .suite import DEFAULT_SUITE, Suite, run_suite
    from .targets import evaluate_targets, targets_markdown

    if args.model_dirs:
        suite = _ad_hoc_suite(args)
    else:
        suite = Suite.load(args.suite or DEFAULT_SUITE)
        if args.limit is not None:
            suite = replace(suite, jobs=tuple(replace(j, limit=min(j.limit or args.limit, args.limit)) for j in suite.jobs))
    progress = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    progress(f"[bench] {suite.num_points()} points over {len(suite.jobs)} jobs")
    start = time.perf_counter()
    results = run_suite(suite, progress)
    seconds = time.perf_counter() - start
    targets = evaluate_targets(results)
    machine = machine_description()
    command = "dllm-backend bench " + " ".join(shlex.quote(a) for a in sys.argv[2:])
    table = markdown_table(results)
    print(table + "\n" + targets_markdown(targets), end="")
    plots = []
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        meta = {"eval": str(suite.eval), "max_tokens": suite.max_tokens, "machine": machine,
                "command": command, "seconds": seconds, "targets": [t.to_json() for t in targets]}
        write_json(results, out / "results.json", meta, with_records=False)  # summaries: small enough to commit
        write_records(results, out / "records.jsonl.gz")
        from .plots import write_plots

        plots = write_plots(results, out)
        (out / "results.md").write_text(render(results, targets, machine, command, plots, out, seconds))
    if args.doc:
        doc = Path(args.doc)
        update_document(doc, render(results, targets, machine, command, plots, doc.parent, seconds))
    return 0


def add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("kind", help="training recipe: llada | sdar | sdar8 | sdar16 | ar")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="default: the recipe's")
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's")
    p.add_argument("--lr", type=float, default=None, help="peak learning rate; default: the recipe's")
    p.add_argument("--warmup-steps", type=int, default=None, help="default: the recipe's")
    p.add_argument("--minutes", type=float, default=None, help="wall-clock cap (stops early)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu", help="cpu | cuda (model and optimizer; data and noise stay on the CPU)")
    p.add_argument("--state-path", default=None, help="save the training state here; resume from it if present")


def run_train(args: argparse.Namespace) -> int:
    from ..train import train_tiny

    knobs = {"batch_size": args.batch_size, "lr": args.lr, "warmup_steps": args.warmup_steps}
    report = train_tiny(args.kind, args.out_dir, seed=args.seed, minutes=args.minutes,
                        steps=args.steps, threads=args.threads, state_path=args.state_path,
                        device=args.device, overrides={k: v for k, v in knobs.items() if v is not None})
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
