"""The trainer's fast data path makes exactly the rows of the definition, in-process or prefetched."""
from __future__ import annotations

import dataclasses
import random

import pytest
import torch

from dllm_backend.train import prefetch, trainer
from dllm_backend.train.checkpoint import write_config_and_tokenizer
from dllm_backend.train.data import RowEncoder, encode
from dllm_backend.train.recipes import RECIPES
from dllm_backend.train.tasks import BINARY_TASKS, TASKS, make_example


@pytest.mark.parametrize("kind", ["llada", "sdar16", "ar"])
def test_row_encoder_equals_the_template_and_tokenizer_path(kind: str, tmp_path) -> None:
    recipe = RECIPES.get(kind)
    _, tok = write_config_and_tokenizer(recipe, tmp_path)
    fast = RowEncoder(tok, recipe)
    rng = random.Random(kind)
    for task in TASKS.names():  # every task, lengths 1..20 (the recipes' lists are 16 long)
        top = 1 if task in BINARY_TASKS else 9
        for length in (1, 2, 7, 16, 20):
            ex = make_example(task, [rng.randint(0, top) for _ in range(length)])
            assert fast(ex) == encode(ex, tok, recipe), ex
    assert fast.check(ex) == encode(ex, tok, recipe)


def test_row_encoder_check_refuses_a_mismatch(tmp_path) -> None:
    recipe = RECIPES.get("llada")
    _, tok = write_config_and_tokenizer(recipe, tmp_path)
    fast = RowEncoder(tok, recipe)
    ex = make_example("copy", [1, 2, 3])
    fast._words[" 2"] = [7]  # a word the tokenizer would not split that way
    with pytest.raises(RuntimeError, match="RowEncoder differs from encode on 'copy: 1 2 3'"):
        fast.check(ex)


def test_prefetched_stream_equals_the_in_process_stream(tmp_path) -> None:
    """What a CUDA run trains on (batches made in a child process) is the CPU run's stream."""
    changes = {"batch_size": 3, "steps": 5}
    recipe = trainer.resolve_recipe("sdar8", changes)
    _, tok = write_config_and_tokenizer(recipe, tmp_path)
    here = list(trainer._batches(recipe, tok, 4, 2, 5))
    there = list(prefetch.prefetched(trainer._stream, "sdar8", changes, str(tmp_path), 4, 2, 5))
    assert len(here) == len(there) == 3
    for a, b in zip(here, there):
        assert torch.equal(a.ids, b.ids) and torch.equal(a.answer, b.answer)


def _failing_stream(n: int):
    if n:
        raise ValueError(f"no batch {n}")
    yield


def test_prefetch_reports_the_producers_error() -> None:
    with pytest.raises(RuntimeError, match="the batch producer failed: ValueError: no batch 3"):
        list(prefetch.prefetched(_failing_stream, 3))


def test_overrides_and_devices_are_validated() -> None:
    r = trainer.resolve_recipe("llada", {"steps": 7, "batch_size": 64, "lr": 1e-3})
    assert (r.steps, r.batch_size, r.lr, r.warmup_steps) == (7, 64, 1e-3, 50)
    assert dataclasses.replace(RECIPES.get("llada"), steps=7, batch_size=64, lr=1e-3) == r
    with pytest.raises(ValueError, match=r"cannot override recipe fields \['block_size'\]"):
        trainer.resolve_recipe("sdar", {"block_size": 8})
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        trainer.resolve_recipe("llada", {"batch_size": 0})
    assert trainer.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="device 'meta': training runs on 'cpu' or 'cuda'"):
        trainer.resolve_device("meta")
    with pytest.raises(ValueError, match="device 'gpu0' is not a torch device"):
        trainer.resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device 'cuda': CUDA is not available"):
            trainer.resolve_device("cuda")
