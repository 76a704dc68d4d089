"""Shared fixtures of the SGLang adapter tests: tiny checkpoints and their reference networks."""
from __future__ import annotations

import pytest

from dllm_backend.core.reference.loading import load_reference
from dllm_backend.core.tiny import make_tiny


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    """architecture -> its tiny checkpoint directory (made once per session)."""
    made: dict[str, object] = {}

    def get(arch: str):
        if arch not in made:
            made[arch] = make_tiny(arch, tmp_path_factory.mktemp(arch), seed=0)
        return made[arch]

    return get


@pytest.fixture(scope="session")
def tiny_loaded(tiny_dir):
    loaded: dict[str, object] = {}

    def get(arch: str):
        if arch not in loaded:
            loaded[arch] = load_reference(tiny_dir(arch))
        return loaded[arch]

    return get
