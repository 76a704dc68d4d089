"""A training run cut into two calls through its saved state ends bit-identical to one straight run."""
from __future__ import annotations

import dataclasses

import torch
from safetensors.torch import load_file

from dllm_backend.core.registry import Registry
from dllm_backend.train import trainer
from dllm_backend.train.recipes import RECIPES


def test_resumed_run_equals_straight_run(tmp_path, monkeypatch) -> None:
    small: Registry = Registry("training recipe")
    small.add("ar", dataclasses.replace(RECIPES.get("ar"), batch_size=2, warmup_steps=2))
    monkeypatch.setattr(trainer, "RECIPES", small)
    monkeypatch.setattr(trainer, "_CHUNK", 2)
    quiet = dict(threads=1, log=lambda _: None)
    straight = trainer.train_tiny("ar", tmp_path / "a", seed=5, steps=4, **quiet)
    state = tmp_path / "state.pt"
    first = trainer.train_tiny("ar", tmp_path / "b", seed=5, steps=2, state_path=state, **quiet)
    second = trainer.train_tiny("ar", tmp_path / "b", seed=5, steps=4, state_path=state, **quiet)
    assert (straight.steps_done, first.steps_done, second.steps_done) == (4, 2, 4)
    a = load_file(str(tmp_path / "a" / "model.safetensors"))
    b = load_file(str(tmp_path / "b" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    init = trainer.build_network(small.get("ar"), trainer.write_config_and_tokenizer(
        small.get("ar"), tmp_path / "c")[0], seed=5).state_dict()
    assert not torch.equal(init["lm_head.weight"], a["lm_head.weight"])  # it did train
