"""Trains one tiny checkpoint (llada | sdar | ar) and prints its held-out exact match.

    nice -n 19 python examples/train_tiny.py llada checkpoints/llada-tiny-digits --seed 0 --steps 1000
"""
from __future__ import annotations

import argparse

from dllm_backend.train.tasks import load_examples
from dllm_backend.train import train_tiny
from dllm_backend.train.evaluate import evaluate

if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--minutes", type=float, default=None)
    p.add_argument("--heldout", default="checkpoints/heldout.jsonl")
    p.add_argument("--limit", type=int, default=None)
    args = p.parse_args()
    report = train_tiny(args.kind, args.out_dir, seed=args.seed, steps=args.steps, minutes=args.minutes)
    print(report)
    ev = evaluate(args.out_dir, load_examples(args.heldout, args.limit))
    print(f"held-out exact match {ev.summary.accuracy:.3f}; per task {ev.per_task}")
