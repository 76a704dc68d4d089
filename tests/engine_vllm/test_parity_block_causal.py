"""Block-causal dLLMs besides SDAR (SDAR-MoE, LLaDA2) served by vLLM (CPU) give the reference generator's token ids.

They take SDAR's path (blocks aligned to position 0; a finished block's commit rides in
the next block's first step). Per architecture one engine (module-scoped); prompts shorter
than a block, of exactly one block, with a tail inside a block and of several whole blocks
plus a tail (prefilled in one forward) go in together, and max_tokens is not a multiple of
the trained block.
"""
from __future__ import annotations

import os

import pytest

pytest.importorskip("vllm")

from dllm_backend.core.families import resolve_dir  # noqa: E402
from dllm_backend.core.policies.base import DecodeConfig  # noqa: E402
from dllm_backend.core.reference.generators import GenerationRequest, generate  # noqa: E402
from dllm_backend.core.reference.loading import load_reference  # noqa: E402
from dllm_backend.core.tiny import make_tiny  # noqa: E402
from dllm_backend.vllm_adapter.plugin import VLLM_MODELS  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ARCHS = ["SDARMoeForCausalLM", "LLaDA2MoeModelLM"]
CASES = {
    "dynamic": {"algorithm": "low_confidence_dynamic", "threshold": 0.001},
    "fixed": {"algorithm": "low_confidence", "steps": 2},
}


@pytest.fixture(scope="module", params=ARCHS)
def arch(request):
    if request.param not in VLLM_MODELS:
        pytest.skip(f"no vLLM model for {request.param} yet (plugin.VLLM_MODELS)")
    return request.param


@pytest.fixture(scope="module")
def checkpoint(arch, tmp_path_factory):
    return make_tiny(arch, tmp_path_factory.mktemp(arch), seed=0)


@pytest.fixture(scope="module")
def shape(checkpoint):
    """(prompts, max_tokens) for the checkpoint's trained block B."""
    B = resolve_dir(checkpoint).block_size
    prompts = [[100], [5, 17, 300], list(range(9, 18)), list(range(7, 7 + B)), list(range(50, 53 + B)),
               list(range(200, 202 + 3 * B))]
    return prompts, B + B // 2 + 1


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


def _serve(llm, prompts, cases: list[dict], max_tokens: int) -> list:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = [SamplingParams(temperature=0.0, max_tokens=max_tokens, extra_args=dict(c)) for c in cases]
    return llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)


@pytest.mark.parametrize("name", list(CASES))
def test_token_ids_equal_reference(llm, checkpoint, shape, name):
    prompts, max_tokens = shape
    loaded = load_reference(checkpoint)
    ref = [generate(loaded, GenerationRequest(tuple(p), max_tokens, DecodeConfig(**CASES[name]))) for p in prompts]
    assert max(max(r.tokens_per_step) for r in ref) > 1  # several tokens committed in one step
    outs = _serve(llm, prompts, [CASES[name]] * len(prompts), max_tokens)
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]
    assert [o.kv_transfer_params["dllm"]["denoising_steps"] for o in outs] == [r.steps for r in ref]
    # one admission forward (all whole prompt blocks), then one forward per denoising step
    assert [o.kv_transfer_params["dllm"]["nfe"] for o in outs] == [1 + r.steps for r in ref]


def test_mixed_batch(llm, checkpoint, shape):
    prompts, max_tokens = shape
    cases = [
        CASES["dynamic"], CASES["fixed"], {"algorithm": "credit", "threshold": 0.001},
        {"algorithm": "threshold", "threshold": 0.001}, {"algorithm": "joint_threshold", "threshold": 0.001},
        {"algorithm": "low_confidence_dynamic", "threshold": 0.5, "temperature": 0.9, "seed": 5},
    ]
    loaded = load_reference(checkpoint)
    ref = [generate(loaded, GenerationRequest(tuple(p), max_tokens, DecodeConfig(**c))).token_ids
           for p, c in zip(prompts, cases)]
    outs = _serve(llm, prompts, cases, max_tokens)
    assert [list(o.outputs[0].token_ids) for o in outs] == ref
