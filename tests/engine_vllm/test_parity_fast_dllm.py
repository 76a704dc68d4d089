"""Fast-dLLM v2 served by vLLM (CPU) gives the reference generator's token ids.

Blocks of 32 (the tiny checkpoint's `bd_size`) decoded as sub-blocks of 8 with logits
shifted inside the block; the commit forward's last logit gives the next block's first
token, and so does the prefill's when the prompt is whole blocks (the 32- and 64-token
prompts; the 64- and 70-token prompts' whole blocks are prefilled in one forward).
max_tokens 41 spans two blocks and is not a multiple of the block. The commit forward
stays a forward of its own (the next block's first step needs the token it gives); a
prompt ending inside a block folds its chunks after the admission into the block's first
step (the 100-token prompt under a 64-token budget).
"""
from __future__ import annotations

import os

import pytest

pytest.importorskip("vllm")

from dllm_backend.core.policies.base import DecodeConfig  # noqa: E402
from dllm_backend.core.reference.generators import GenerationRequest, generate  # noqa: E402
from dllm_backend.core.reference.loading import load_reference  # noqa: E402
from dllm_backend.core.tiny import make_tiny  # noqa: E402
from dllm_backend.vllm_adapter.plugin import VLLM_MODELS  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ARCH = "Fast_dLLM_QwenForCausalLM"
PROMPTS = [[100], [5, 17, 300], list(range(9, 18)), list(range(200, 232)), list(range(50, 85)),
           list(range(300, 364)), list(range(400, 470))]
MAX_TOKENS = 41
CASES = {
    "threshold": {"algorithm": "threshold", "threshold": 0.001},
    "fixed": {"algorithm": "low_confidence", "steps": 2},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    if ARCH not in VLLM_MODELS:
        pytest.skip(f"no vLLM model for {ARCH} yet (plugin.VLLM_MODELS)")
    return make_tiny(ARCH, tmp_path_factory.mktemp("fast_dllm"), seed=0)


@pytest.fixture(scope="module")
def llm(checkpoint):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    engine = LLM(
        model=str(checkpoint), enforce_eager=True, dtype="float32", max_model_len=256,
        max_num_batched_tokens=256, max_num_seqs=8, seed=0,
    )
    yield engine
    del engine


def _serve(llm, cases: list[dict]) -> list:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = [SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, extra_args=dict(c)) for c in cases]
    return llm.generate([TokensPrompt(prompt_token_ids=p) for p in PROMPTS], params, use_tqdm=False)


def _reference(checkpoint, cases: list[dict]) -> list:
    loaded = load_reference(checkpoint)
    return [generate(loaded, GenerationRequest(tuple(p), MAX_TOKENS, DecodeConfig(**c))) for p, c in zip(PROMPTS, cases)]


@pytest.mark.parametrize("name", list(CASES))
def test_token_ids_equal_reference(llm, checkpoint, name):
    cases = [CASES[name]] * len(PROMPTS)
    ref = _reference(checkpoint, cases)
    assert max(max(r.tokens_per_step) for r in ref) > 1  # several tokens committed in one step
    outs = _serve(llm, cases)
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]
    assert [o.kv_transfer_params["dllm"]["denoising_steps"] for o in outs] == [r.steps for r in ref]
    # forwards: the admission (every whole prompt block in one forward; a prompt shorter
    # than a block is admitted with one discarded chunk), the steps, and one commit forward
    # per block boundary inside the output (it gives the token at that boundary; the
    # prefill gives the one at the prompt end)
    for p, o, r in zip(PROMPTS, outs, ref):
        assert o.kv_transfer_params["dllm"]["nfe"] == 1 + r.steps + _commits(len(p), len(o.outputs[0].token_ids))


def _commits(prompt_len: int, n: int) -> int:
    """Commit forwards: one per block boundary strictly inside the output positions."""
    return sum(1 for q in range(prompt_len + 1, prompt_len + n) if q % 32 == 0)


def test_mixed_batch(llm, checkpoint):
    cases = [CASES["threshold"], CASES["fixed"], {"algorithm": "credit", "threshold": 0.001},
             {"algorithm": "low_confidence_dynamic", "threshold": 0.001}, CASES["threshold"],
             {"algorithm": "threshold", "threshold": 0.3, "temperature": 0.9, "seed": 4}, CASES["fixed"]]
    ref = _reference(checkpoint, cases)
    outs = _serve(llm, cases)
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]


@pytest.fixture(scope="module")
def stop_checkpoint(checkpoint, tmp_path_factory):
    """A copy of the checkpoint whose generation config adds, as a stop id, a token the
    model first generates in the middle of an output (so requests stop mid-block)."""
    import json
    import shutil

    ref = _reference(checkpoint, [CASES["threshold"]] * len(PROMPTS))
    stop = next(
        tok for r in ref for k, tok in enumerate(r.token_ids) if 3 <= k < 30 and tok not in r.token_ids[:k]
    )
    out = tmp_path_factory.mktemp("fast_dllm_stop")
    shutil.copytree(checkpoint, out, dirs_exist_ok=True)
    gen = json.loads((out / "generation_config.json").read_text())
    gen["eos_token_id"] = list(gen["eos_token_id"]) + [stop]
    (out / "generation_config.json").write_text(json.dumps(gen))
    return out


@pytest.fixture(scope="module")
def stop_llm(stop_checkpoint):
    """The stop checkpoint under a 64-token budget: prompts of more than two blocks are chunked."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    engine = LLM(
        model=str(stop_checkpoint), enforce_eager=True, dtype="float32", max_model_len=256,
        max_num_batched_tokens=64, max_num_seqs=8, seed=0,
    )
    yield engine
    del engine


def test_stop_id_ends_requests_like_the_reference(stop_checkpoint, stop_llm):
    cases = [CASES["threshold"], CASES["fixed"], CASES["threshold"], CASES["fixed"], CASES["threshold"],
             CASES["fixed"], CASES["threshold"]]
    ref = _reference(stop_checkpoint, cases)
    assert "stop" in [r.finish_reason for r in ref]
    outs = _serve(stop_llm, cases)
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]
    assert [o.outputs[0].finish_reason for o in outs] == [r.finish_reason for r in ref]


def test_chunked_prompt_folds_into_the_first_step_unless_it_ends_at_a_block(stop_checkpoint, stop_llm):
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    loaded = load_reference(stop_checkpoint)
    # 100 tokens: admission [0, 64), then [64, 96) + the block [96, 128) holding the prompt
    # tail in one step; 128 tokens: admission [0, 64), then [64, 128) alone, whose last logit
    # gives the token at 128 (the block after it cannot be armed before that token exists)
    for prompt, chunks in ((list(range(500, 600)), 1), (list(range(700, 828)), 2)):
        ref = generate(loaded, GenerationRequest(tuple(prompt), MAX_TOKENS, DecodeConfig(**CASES["threshold"])))
        params = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, extra_args=dict(CASES["threshold"]))
        (out,) = stop_llm.generate([TokensPrompt(prompt_token_ids=prompt)], [params], use_tqdm=False)
        assert list(out.outputs[0].token_ids) == ref.token_ids
        n = len(out.outputs[0].token_ids)
        assert out.kv_transfer_params["dllm"]["nfe"] == chunks + ref.steps + _commits(len(prompt), n)
