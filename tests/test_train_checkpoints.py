"""The committed trained checkpoints load unchanged and answer held-out prompts exactly.

Decoding is one token per step (dLLMs: `low_confidence` with the default steps; the AR twin:
greedy). Only tasks each model solves on every held-out example are pinned here; the
accuracies over the whole held-out set are in checkpoints/README.md.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dllm_backend.train.tasks import load_examples
from dllm_backend.bench.reference_runner import load, run_point
from dllm_backend.bench.sweep import SweepPoint

ROOT = Path(__file__).resolve().parents[1] / "checkpoints"
HELDOUT = load_examples(ROOT / "heldout.jsonl")

# checkpoint -> (decoding, tasks it gets right on all 256 held-out examples)
CASES = {
    "llada-tiny-digits": (SweepPoint("low_confidence"), ("copy", "reverse", "parity")),
    "sdar-tiny-digits": (SweepPoint("low_confidence"), ("copy", "reverse")),
    "sdar16-tiny-digits": (SweepPoint("low_confidence"), ("copy", "reverse", "parity")),
    "qwen3-ar-tiny-digits": (SweepPoint("greedy"), ("copy", "parity")),
}


def _first(tasks: tuple[str, ...], per_task: int):
    return [e for t in tasks for e in [x for x in HELDOUT if x.task == t][:per_task]]


def test_heldout_set_shape() -> None:
    assert len(HELDOUT) == 256
    assert {e.task for e in HELDOUT} == {"copy", "reverse", "parity"}
    assert all(len(e.answer.split()) == 16 for e in HELDOUT)


@pytest.mark.parametrize("name", sorted(CASES))
def test_checkpoint_answers_heldout_prompts(name: str) -> None:
    point, tasks = CASES[name]
    examples = _first(tasks, 3)
    records = run_point(ROOT / name, examples, point, max_tokens=24, model=load(ROOT / name))
    assert [r.correct for r in records] == [True] * len(examples)
    # 16 digits + the end-of-turn token, one committed per step
    assert all(r.output_tokens == 17 and r.finish_reason == "stop" for r in records)
    assert all(r.steps >= 17 for r in records)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", sorted(CASES))
def test_reference_decodes_on_cuda_as_on_cpu(name: str) -> None:
    """The reference generators are device-clean: the GPU decodes the pinned prompts token for token as the CPU."""
    point, tasks = CASES[name]
    examples = _first(tasks, 3)
    cpu = run_point(ROOT / name, examples, point, max_tokens=24, model=load(ROOT / name))
    gpu = run_point(ROOT / name, examples, point, max_tokens=24, model=load(ROOT / name, device="cuda"))
    assert [r.output_ids for r in gpu] == [r.output_ids for r in cpu]
    assert all(r.correct for r in gpu)
