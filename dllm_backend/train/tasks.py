"""Synthetic digit-list tasks with exactly checkable answers: seeded examples and exact-match scoring.

Every task reads a list of digits and answers with digits separated by single spaces, so the
tiny BPE gives one token per digit (a bare digit first, then " d" tokens): an answer of N
digits is N tokens. The tasks differ in how parallel their answers are:

- ``copy``, ``reverse``: each answer digit depends on one prompt digit (easy in parallel);
- ``sort``: each answer digit depends on the counts of the whole list (parallel, but needs
  global information);
- ``parity``: running XOR of a bit list (answer bit i = bit i-1 of the answer XOR prompt bit
  i); without the previous answer bit a position is a coin flip, so a model is confident only
  left to right (not parallel);
- ``cumsum``: running sum mod 10, the same dependency with a 100-entry table (harder to learn).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..core.registry import Registry

Solver = Callable[[list[int]], list[int]]

TASKS: Registry[Solver] = Registry("synthetic task")


@TASKS.register("copy")
def _copy(digits: list[int]) -> list[int]:
    return list(digits)


@TASKS.register("reverse")
def _reverse(digits: list[int]) -> list[int]:
    return digits[::-1]


@TASKS.register("sort")
def _sort(digits: list[int]) -> list[int]:
    return sorted(digits)


@TASKS.register("cumsum")
def _cumsum(digits: list[int]) -> list[int]:
    out, total = [], 0
    for d in digits:
        total = (total + d) % 10
        out.append(total)
    return out


@TASKS.register("parity")
def _parity(bits: list[int]) -> list[int]:
    out, acc = [], 0
    for b in bits:
        acc ^= b
        out.append(acc)
    return out


# tasks whose lists hold bits (0/1) rather than digits
BINARY_TASKS = frozenset({"parity"})


@dataclass(frozen=True)
class TaskConfig:
    """Which tasks and list lengths a data set draws from (uniformly)."""

    tasks: tuple[str, ...] = ("copy", "reverse", "parity")
    # NOTE: one fixed length keeps the prompt-to-answer offsets fixed; with lengths 16-20 a
    # 0.8M masked-diffusion model had not learned to align copy/reverse after 500 steps.
    min_len: int = 16
    max_len: int = 16

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ValueError("tasks is empty: name at least one task")
        for name in self.tasks:
            TASKS.get(name)  # ValueError listing the valid names
        if not 1 <= self.min_len <= self.max_len:
            raise ValueError(f"need 1 <= min_len <= max_len, got min_len={self.min_len}, max_len={self.max_len}")


@dataclass(frozen=True)
class Example:
    """One chat turn: `prompt` is the user message, `answer` the exact expected reply."""

    task: str
    prompt: str
    answer: str

    def to_json(self) -> dict[str, str]:
        return {"task": self.task, "prompt": self.prompt, "answer": self.answer}


def load_examples(path: str | Path, limit: int | None = None) -> list[Example]:
    """An eval set written one `Example.to_json()` per line (checkpoints/heldout.jsonl); the first `limit`."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    out = [Example(task=r["task"], prompt=r["prompt"], answer=r["answer"]) for r in rows]
    return out[:limit] if limit is not None else out


def render_digits(digits: Sequence[int]) -> str:
    return " ".join(str(d) for d in digits)


def make_example(task: str, digits: Sequence[int]) -> Example:
    digits = list(digits)
    top = 1 if task in BINARY_TASKS else 9
    if any(not 0 <= d <= top for d in digits):
        raise ValueError(f"{task} needs digits in 0..{top}, got {digits}")
    answer = TASKS.get(task)(digits)
    return Example(task=task, prompt=f"{task}: {render_digits(digits)}", answer=render_digits(answer))


# NOTE: train and held-out draw from disjoint seed streams, and held-out prompts are also
# removed from training (`examples(..., exclude=...)`), so the held-out score is never a recall.
_SPLIT_SALT = {"train": 0, "heldout": 1_000_003}


def examples(
    n: int, seed: int, split: str = "train", config: TaskConfig = TaskConfig(),
    exclude: Iterable[str] = (),
) -> list[Example]:
    """`n` examples, deterministic in (seed, split, config); prompts in `exclude` are skipped."""
    if split not in _SPLIT_SALT:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(_SPLIT_SALT)}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed * 7919 + _SPLIT_SALT[split])
    skip = set(exclude)
    out: list[Example] = []
    while len(out) < n:
        task = config.tasks[rng.randrange(len(config.tasks))]
        length = rng.randint(config.min_len, config.max_len)
        base = 2 if task in BINARY_TASKS else 10
        ex = make_example(task, [rng.randrange(base) for _ in range(length)])
        if ex.prompt not in skip:
            out.append(ex)
    return out


def normalize(text: str) -> str:
    """What exact match compares: the reply with surrounding whitespace removed."""
    return text.strip()


def exact_match(prediction: str, answer: str) -> bool:
    return normalize(prediction) == normalize(answer)
