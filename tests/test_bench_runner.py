"""The reference runner: records agree with the generators' own counts; scoring is exact."""
from __future__ import annotations

import pytest

from dllm_backend.bench.reference_runner import load, run_point
from dllm_backend.bench.sweep import SweepPoint
from dllm_backend.core.policies.base import DecodeConfig
from dllm_backend.core.reference.generators import GenerationRequest, generate
from dllm_backend.core.reference.loading import load_reference
from dllm_backend.core.tiny import make_tiny
from dllm_backend.train.checkpoint import build_network, save_weights, write_config_and_tokenizer
from dllm_backend.train.data import prompt_ids
from dllm_backend.train.recipes import RECIPES
from dllm_backend.train.tasks import Example, make_example


@pytest.fixture(scope="module")
def llada_dir(tmp_path_factory):
    return make_tiny("LLaDAModelLM", tmp_path_factory.mktemp("llada"), seed=0)


def test_dllm_records_match_the_generator(llada_dir) -> None:
    from transformers import PreTrainedTokenizerFast

    examples = [make_example("copy", [1, 2, 3]), make_example("reverse", [4, 5])]
    point = SweepPoint("threshold", (("threshold", 0.5),))
    records = run_point(llada_dir, examples, point, max_tokens=8)
    tok = PreTrainedTokenizerFast.from_pretrained(str(llada_dir))
    loaded = load_reference(llada_dir)
    for ex, rec in zip(examples, records):
        prompt = tuple(prompt_ids(tok, ex.prompt))
        want = generate(loaded, GenerationRequest(prompt, 8, DecodeConfig("threshold", threshold=0.5)))
        assert (rec.prompt_tokens, rec.output_tokens) == (len(prompt), len(want.token_ids))
        assert (rec.nfe, rec.steps, rec.finish_reason) == (want.nfe, want.steps, want.finish_reason)
        assert rec.correct is False  # random weights
        assert rec.first_token_s is not None and rec.start_s <= rec.first_token_s <= rec.end_s
    assert [r.request_id for r in records] == ["0", "1"]


def test_exact_match_scoring_marks_a_right_answer(tmp_path) -> None:
    """An AR twin whose reply we know: score it against that reply and against a wrong one."""
    recipe = RECIPES.get("ar")
    config, tok = write_config_and_tokenizer(recipe, tmp_path)
    save_weights(build_network(recipe, config, seed=1), tmp_path / "model.safetensors")
    model = load(tmp_path)
    probe = Example("copy", "copy: 1 2", "")
    reply = model.decode(tuple(prompt_ids(tok, probe.prompt)), SweepPoint("greedy"), 6)
    text = tok.decode(reply.token_ids, skip_special_tokens=True)
    right = Example("copy", probe.prompt, text)
    wrong = Example("copy", probe.prompt, text + " 9")
    records = run_point(tmp_path, [right, wrong], SweepPoint("greedy"), max_tokens=6, model=model)
    assert [r.correct for r in records] == [True, False]
    assert [r.output_tokens for r in records] == [len(reply.token_ids)] * 2
    assert all(r.nfe == r.output_tokens == r.steps for r in records)


def test_runner_refuses_concurrency_and_wrong_algorithm(llada_dir, tmp_path) -> None:
    with pytest.raises(ValueError, match="concurrency 2"):
        run_point(llada_dir, [], SweepPoint("threshold", concurrency=2), 8)
    recipe = RECIPES.get("ar")
    config, _ = write_config_and_tokenizer(recipe, tmp_path)
    save_weights(build_network(recipe, config, seed=1), tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="only 'greedy' applies, got 'threshold'"):
        run_point(tmp_path, [make_example("copy", [1])], SweepPoint("threshold"), 4)
