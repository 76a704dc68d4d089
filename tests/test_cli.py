"""`dllm-backend make-tiny` + `generate --json` on every architecture, and bad-input errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dllm_backend.cli import main
from dllm_backend.core.families import FAMILIES

ARCHS = FAMILIES.names()


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    dirs = {}
    for arch in ARCHS:
        assert main(["make-tiny", arch, str(root / arch), "--seed", "3"]) == 0
        dirs[arch] = root / arch
    return dirs


def _generate(capsys: pytest.CaptureFixture[str], model_dir: Path, *flags: str) -> dict:
    capsys.readouterr()
    code = main(["generate", str(model_dir), "--prompt", "Sort 3 1 2.", "--json", *flags])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


@pytest.mark.parametrize("arch", ARCHS)
def test_generate_json_every_architecture(arch: str, tiny_dirs: dict[str, Path], capsys) -> None:
    first = _generate(capsys, tiny_dirs[arch], "--max-tokens", "12")
    again = _generate(capsys, tiny_dirs[arch], "--max-tokens", "12")
    assert first["token_ids"] == again["token_ids"]  # greedy is deterministic
    assert {"text", "token_ids", "nfe", "steps"} <= set(first)
    assert 1 <= len(first["token_ids"]) <= 12
    assert first["finish_reason"] in ("stop", "length")
    if first["finish_reason"] == "length":
        assert len(first["token_ids"]) == 12
    assert first["nfe"] >= first["steps"] >= 1
    assert sum(first["tokens_per_step"]) >= len(first["token_ids"]) - 1  # Fast-dLLM v2 adds AR tokens


@pytest.mark.parametrize(
    ("arch", "flags", "needle"),
    [
        ("LLaDAModelLM", ["--algorithm", "nope"], "'nope'"),
        ("LLaDAModelLM", ["--algorithm", "threshold", "--threshold", "1.5"], "threshold"),
        ("LLaDAModelLM", ["--steps", "0"], "steps"),
        ("SDARForCausalLM", ["--block-size", "5"], "block_size 5"),
        ("DreamModel", ["--max-tokens", "0"], "max_tokens"),
        ("LLaDAModelLM", ["--max-tokens", "100000"], "maximum length"),
        ("SDARForCausalLM", ["--cache-mode", "dual"], "cache_mode"),
        ("DreamModel", ["--algorithm", "maskgit_plus", "--steps", "5000"], "steps 5000 is above the maximum 1024"),
        ("LLaDAModelLM", ["--block-size", "4096"], "block_size 4096 is above the maximum 2048"),
    ],
)
def test_bad_input_names_the_value(arch, flags, needle, tiny_dirs, capsys) -> None:
    capsys.readouterr()
    code = main(["generate", str(tiny_dirs[arch]), "--prompt", "hi", "--json", *flags])
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err, err


def test_unknown_architecture_lists_valid_ones(tmp_path: Path, capsys) -> None:
    assert main(["make-tiny", "GPT2LMHeadModel", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "'GPT2LMHeadModel'" in err and "LLaDAModelLM" in err


def test_generate_takes_the_servers_defaults(tiny_dirs: dict[str, Path], capsys) -> None:
    # no --max-tokens: the checkpoint has no max_new_tokens, so the stated default canvas
    out = _generate(capsys, tiny_dirs["SDARForCausalLM"])
    assert out["max_tokens"] == 128
    assert len(out["token_ids"]) == 128 or out["finish_reason"] == "stop"
    # SDAR's family threshold (0.85), the one the vLLM adapter uses, not the policy's 0.95
    assert (out["decode"]["algorithm"], out["decode"]["threshold"]) == ("low_confidence_dynamic", 0.85)
    assert _generate(capsys, tiny_dirs["SDARForCausalLM"], "--max-tokens", "4", "--threshold", "0.5")["decode"]["threshold"] == 0.5
