"""Checkpoint resolution (mask id, default canvas), the family's decoding defaults and the work limits."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from dllm_backend.core.configs.dream import TINY_CONFIG as DREAM_TINY
from dllm_backend.core.configs.llada import TINY_CONFIG as LLADA_TINY
from dllm_backend.core.configs.llada2 import TINY_CONFIG as LLADA2_TINY
from dllm_backend.core.families import DEFAULT_MAX_TOKENS, FAMILIES, resolve, resolve_dir
from dllm_backend.core.limits import DEFAULT_MAX_STEPS, LimitError, Limits
from dllm_backend.core.policies import validate
from dllm_backend.core.policies.base import DecodeConfig
from dllm_backend.core.reference.generators import GenerationRequest, validate_request
from dllm_backend.core.reference.loading import LoadedModel


# ----- mask id: refused at load when there is none in the vocabulary -----
def test_checkpoint_without_a_usable_mask_id_is_refused_naming_it(tmp_path: Path) -> None:
    # LLaDA2's real config has no mask_token_id (its tokenizer has <|mask|>); the tiny
    # vocabulary (2048) does not hold the family's fallback id 156895
    assert "mask_token_id" not in LLADA2_TINY
    d = tmp_path / "no-mask"
    d.mkdir()
    (d / "config.json").write_text(json.dumps(LLADA2_TINY))
    with pytest.raises(ValueError) as e:
        resolve_dir(d)
    msg = str(e.value)
    assert str(d) in msg and "'<|mask|>'" in msg and "156895" in msg and "2048" in msg
    # the same checkpoint with the tokenizer's mask token, or a mask_token_id, resolves
    assert resolve(LLADA2_TINY, special_tokens={"<|mask|>": 2000}).mask_id == 2000
    assert resolve({**LLADA2_TINY, "mask_token_id": 7}).mask_id == 7


@pytest.mark.parametrize("bad", [2048, -1, 99999, "5"])
def test_mask_token_id_outside_the_vocabulary_is_refused(bad) -> None:
    with pytest.raises(ValueError, match=f"mask_token_id {bad!r} in config.json"):
        resolve({**LLADA_TINY, "mask_token_id": bad}, source="ckpt")
    with pytest.raises(ValueError, match="generation_config.json"):
        resolve({k: v for k, v in LLADA2_TINY.items()}, {"mask_token_id": bad})


# ----- default canvas: the checkpoint's max_new_tokens, else DEFAULT_MAX_TOKENS -----
def test_default_canvas_comes_from_the_generation_config_else_the_stated_default() -> None:
    assert DEFAULT_MAX_TOKENS == 128
    assert resolve(LLADA_TINY).default_max_tokens == 128
    assert resolve(LLADA_TINY, {"max_new_tokens": 40}).default_max_tokens == 40


# ----- one source of decoding defaults -----
@pytest.mark.parametrize("arch", FAMILIES.names())
def test_family_decode_knobs_fill_only_the_default_algorithm(arch: str) -> None:
    spec = FAMILIES.get(arch)
    greedy = {} if spec.greedy_filters else {"top_p": 1.0, "top_k": 0}  # the family's greedy rule
    got = spec.decode_knobs({})
    assert got == {"algorithm": spec.default_algorithm, "steps": spec.default_steps,
                   "threshold": spec.default_threshold, **greedy}
    assert spec.decode_knobs({"algorithm": spec.default_algorithm, "threshold": 0.5})["threshold"] == 0.5
    other = "random" if spec.default_algorithm != "random" else "low_confidence"
    assert spec.decode_knobs({"algorithm": other}) == {"algorithm": other, **greedy}


def test_sdar_default_threshold_is_the_family_one() -> None:
    cfg = validate(DecodeConfig(**FAMILIES.get("SDARForCausalLM").decode_knobs({})))
    assert (cfg.algorithm, cfg.threshold) == ("low_confidence_dynamic", 0.85)


# ----- limits -----
def _loaded(config: dict) -> LoadedModel:
    return LoadedModel(model=None, family=resolve(config), model_dir=Path("."))  # type: ignore[arg-type]


def _check(config: dict, max_tokens: int = 8, limits: Limits | None = None, **kw) -> GenerationRequest:
    block = kw.pop("block_size", None)
    req = GenerationRequest((1, 2, 3), max_tokens, DecodeConfig(**kw), block_size=block)
    return validate_request(_loaded(config), req, limits)


@pytest.mark.parametrize(("knobs", "field"), [
    ({"algorithm": "low_confidence", "block_size": 2**63 - 1}, "block_size"),
    ({"algorithm": "low_confidence", "block_size": 10**9}, "block_size"),
    ({"algorithm": "low_confidence", "block_size": 2049}, "block_size"),  # tiny LLaDA: 2048 positions
    ({"algorithm": "maskgit_plus", "steps": DEFAULT_MAX_STEPS + 1}, "steps"),
    ({"algorithm": "maskgit_plus", "steps": 2**63 - 1}, "steps"),
    ({"algorithm": "joint_threshold", "max_post_edit_steps": 10**9}, "max_post_edit_steps"),
])
def test_reference_refuses_work_above_the_limits(knobs, field) -> None:
    with pytest.raises(LimitError) as e:
        _check(LLADA_TINY, **knobs)
    assert e.value.field == field and field in str(e.value)


def test_reference_accepts_the_limits_themselves_and_custom_ones() -> None:
    assert _check(LLADA_TINY, algorithm="maskgit_plus", steps=DEFAULT_MAX_STEPS).decode.steps == DEFAULT_MAX_STEPS
    assert _check(LLADA_TINY, algorithm="low_confidence", block_size=2048).block_size == 2048
    small = Limits(max_block_size=16, max_steps=4)
    with pytest.raises(LimitError, match="steps 5"):
        _check(LLADA_TINY, limits=small, algorithm="low_confidence", steps=5, block_size=8)
    with pytest.raises(LimitError, match="block_size 32"):
        _check(LLADA_TINY, limits=small, algorithm="low_confidence")  # LLaDA's default block
    # Dream's default block is the whole canvas, up to the largest block
    assert _check(DREAM_TINY, 40, small, algorithm="maskgit_plus").block_size == 16
    assert _check(DREAM_TINY, 12, small, algorithm="maskgit_plus").block_size == 12


@pytest.mark.parametrize(("kw", "field"), [({"max_block_size": 0}, "max_block_size"), ({"max_steps": True}, "max_steps"),
                                           ({"max_block_size": 8, "max_steps": 2.5}, "max_steps")])
def test_limits_themselves_are_validated(kw, field) -> None:
    with pytest.raises(LimitError) as e:
        Limits(**{"max_block_size": 8, **kw})
    assert e.value.field == field
