"""Synthetic tasks: exact answers, deterministic splits, exact-match scoring, one token per digit."""
from __future__ import annotations

import pytest

from dllm_backend.train.tasks import TASKS, TaskConfig, exact_match, examples, make_example


@pytest.mark.parametrize("task, answer", [
    ("copy", "3 1 4 1 5"),
    ("reverse", "5 1 4 1 3"),
    ("sort", "1 1 3 4 5"),
    ("cumsum", "3 4 8 9 4"),  # 3, 3+1, 4+4, 8+1, 9+5=14 -> 4
])
def test_task_answers_are_exact(task: str, answer: str) -> None:
    ex = make_example(task, [3, 1, 4, 1, 5])
    assert ex.prompt == f"{task}: 3 1 4 1 5"
    assert ex.answer == answer


def test_parity_is_a_running_xor_of_bits() -> None:
    ex = make_example("parity", [1, 0, 1, 1, 0, 0, 1])
    assert (ex.prompt, ex.answer) == ("parity: 1 0 1 1 0 0 1", "1 1 0 1 1 1 0")
    with pytest.raises(ValueError, match="parity needs digits in 0..1"):
        make_example("parity", [1, 2])
    held = examples(100, seed=0, split="heldout")
    assert all(set(e.prompt.split()[1:]) <= {"0", "1"} for e in held if e.task == "parity")


def test_unknown_task_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="copy, cumsum, parity, reverse, sort"):
        TaskConfig(tasks=("copy", "add"))
    with pytest.raises(ValueError, match="min_len"):
        TaskConfig(min_len=5, max_len=4)
    with pytest.raises(ValueError, match="copy needs digits in 0..9"):
        make_example("copy", [1, 10])


def test_examples_are_deterministic_and_splits_disjoint() -> None:
    a = examples(50, seed=3)
    assert a == examples(50, seed=3)
    assert a[:20] == examples(20, seed=3)  # a prefix does not depend on n
    assert a != examples(50, seed=4)
    held = examples(50, seed=3, split="heldout")
    train = examples(200, seed=3, exclude={e.prompt for e in held})
    assert not {e.prompt for e in held} & {e.prompt for e in train}
    cfg = TaskConfig()
    assert all(cfg.min_len <= len(e.answer.split()) <= cfg.max_len for e in a)
    assert {e.task for e in examples(200, seed=0)} == set(cfg.tasks)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        examples(1, seed=0, split="dev")


def test_exact_match_is_exact_up_to_surrounding_whitespace() -> None:
    assert exact_match(" 1 2 3\n", "1 2 3")
    assert not exact_match("1 2 3 4", "1 2 3")
    assert not exact_match("1 2  3", "1 2 3")
    assert not exact_match("123", "1 2 3")


def test_registry_names() -> None:
    assert sorted(TASKS.names()) == ["copy", "cumsum", "parity", "reverse", "sort"]
