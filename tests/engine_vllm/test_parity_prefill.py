"""Block-causal prefill and commit forwards folded into denoising steps (vLLM, CPU): exact, and the forwards saved.

A block-causal query that spans several blocks runs as one forward (one non-causal
segment per block: `Layout.segments`, `virtual_batch`): the prompt's whole blocks at
admission, and, in a later step, any chunk still in front of a block together with the
block's first denoising step (the finished block's commit forward, the rest of a chunked
prompt, a re-prefill after preemption). A request's forwards are then its admission chunk,
the chunks the token budget could not fold, and its denoising steps.

Two engines: the trained SDAR checkpoint (the NFE target on the held-out prompts), and a
tiny random SDAR under a small token budget and a tiny KV pool (chunked prompts,
preemption). The other block-causal families are covered in test_parity_block_causal.py
and test_parity_fast_dllm.py.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("vllm")

from dllm_backend.core.families import FAMILIES  # noqa: E402
from dllm_backend.core.policies.base import DecodeConfig  # noqa: E402
from dllm_backend.core.reference.generators import GenerationRequest, generate  # noqa: E402
from dllm_backend.core.reference.loading import load_reference  # noqa: E402
from dllm_backend.core.tiny import make_tiny  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

TRAINED = Path(__file__).resolve().parents[2] / "checkpoints" / "sdar-tiny-digits"
DYNAMIC = {"algorithm": "low_confidence_dynamic", "threshold": 0.001}


def _engine(model: Path, **kwargs):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    return LLM(model=str(model), enforce_eager=True, dtype="float32", seed=0, **kwargs)


def _params(knobs: dict, max_tokens: int):
    from vllm import SamplingParams

    knobs = dict(knobs)
    temperature, seed = knobs.pop("temperature", 0.0), knobs.pop("seed", None)
    return SamplingParams(temperature=temperature, seed=seed, max_tokens=max_tokens, extra_args=knobs or None)


def _generate(llm, prompts: list[list[int]], knobs: list[dict], max_tokens: int) -> list:
    from vllm.inputs import TokensPrompt

    params = [_params(k, max_tokens) for k in knobs]
    return llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)


def _reference(model: Path, prompts: list[list[int]], decodes: list[DecodeConfig], max_tokens: int) -> list:
    loaded = load_reference(model)
    return [generate(loaded, GenerationRequest(tuple(p), max_tokens, d)) for p, d in zip(prompts, decodes)]


# ----- the trained checkpoint: held-out prompts, the family's default decoding -----
def test_trained_sdar_needs_one_forward_per_step_plus_its_admission():
    from dllm_backend.train.data import prompt_ids
    from dllm_backend.train.tasks import exact_match, load_examples
    from dllm_backend.vllm_adapter.decode_params import decode_config

    examples = load_examples(TRAINED.parent / "heldout.jsonl", 16)
    llm = _engine(TRAINED, max_model_len=256, max_num_seqs=16)
    tokenizer = llm.get_tokenizer()
    prompts = [prompt_ids(tokenizer, ex.prompt) for ex in examples]
    # prompts of 31 tokens (ending inside a block of 4) and 32 (ending at a block boundary)
    assert {len(p) % 4 for p in prompts} == {0, 3}
    outs = _generate(llm, prompts, [{}] * len(prompts), 24)  # no knobs: the family's defaults
    del llm
    decode = decode_config(_params({}, 24), FAMILIES.get("SDARForCausalLM"))
    assert decode == DecodeConfig("low_confidence_dynamic", threshold=0.85, temperature=0.0)
    ref = _reference(TRAINED, prompts, [decode] * len(prompts), 24)
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]
    assert all(exact_match(tokenizer.decode(r.token_ids, skip_special_tokens=True), ex.answer)
               for r, ex in zip(ref, examples))
    for o, r in zip(outs, ref):
        stats = o.kv_transfer_params["dllm"]
        assert len(o.outputs[0].token_ids) == 17 and o.outputs[0].finish_reason == "stop"
        assert stats["denoising_steps"] == r.steps
        # the admission forward (the prompt's whole blocks), then one forward per denoising
        # step: every later prefill chunk and every commit forward rides in a step
        assert stats["nfe"] == 1 + r.steps <= 8
    # the reference itself: one prefill, the steps and one commit forward per decoded block
    assert [r.nfe for r in ref] == [1 + r.steps + (-(-(len(p) + 17) // 4) - len(p) // 4) for p, r in zip(prompts, ref)]


# ----- a tiny SDAR: a small token budget and a tiny KV pool -----
@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return make_tiny("SDARForCausalLM", tmp_path_factory.mktemp("sdar_small"), seed=0)


@pytest.fixture(scope="module")
def small(tiny):
    # 16 tokens per step (4 blocks); KV pages of 32 tokens, 6 of them: 192 slots for requests of
    # up to 70 tokens each, so several running requests have to preempt one another
    engine = _engine(tiny, max_model_len=128, max_num_batched_tokens=16, max_num_seqs=6,
                     block_size=32, num_gpu_blocks_override=6)
    yield engine
    del engine


def test_long_prompt_is_prefilled_in_whole_block_chunks_the_last_folded(small, tiny):
    # 40 tokens = 10 blocks under a 16-token budget: admission [0, 16), then [16, 32) (the
    # fold [16, 44) does not fit), then [32, 40) + the first block [40, 44) in one step;
    # 41 tokens: the last chunk [32, 40) folds with the block [40, 44) holding the prompt tail
    prompts = [list(range(60, 100)), list(range(300, 341))]
    ref = _reference(tiny, prompts, [DecodeConfig(**DYNAMIC)] * 2, 12)
    for prompt, r in zip(prompts, ref):
        (out,) = _generate(small, [prompt], [DYNAMIC], 12)
        assert list(out.outputs[0].token_ids) == r.token_ids
        assert out.kv_transfer_params["dllm"]["nfe"] == 2 + r.steps
    # together, with prompts of every phase sharing the 16-token steps
    outs = _generate(small, prompts + [[7, 8, 9], list(range(20, 28))], [DYNAMIC] * 4, 12)
    ref += _reference(tiny, [[7, 8, 9], list(range(20, 28))], [DecodeConfig(**DYNAMIC)] * 2, 12)
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]


def test_preempted_requests_re_prefill_their_committed_blocks_exactly(small, tiny):
    # the pool holds about three of these requests at once: running requests preempt others
    scheduler = small.llm_engine.engine_core.engine_core.scheduler
    preempted: list[str] = []
    original = scheduler._preempt_request

    def counting(request, *args, **kwargs):
        preempted.append(request.request_id)
        return original(request, *args, **kwargs)

    prompts = [list(range(10 + 7 * i, 10 + 7 * i + 25 + i)) for i in range(6)]
    knobs = [DYNAMIC, {"algorithm": "low_confidence", "steps": 2}, DYNAMIC,
             {**DYNAMIC, "threshold": 0.3, "temperature": 0.8, "seed": 3}, DYNAMIC,
             {"algorithm": "threshold", "threshold": 0.001}]
    ref = _reference(tiny, prompts, [DecodeConfig(**k) for k in knobs], 40)
    scheduler._preempt_request = counting
    try:
        outs = _generate(small, prompts, knobs, 40)
    finally:
        del scheduler._preempt_request
    assert preempted
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]


def test_requests_preempted_mid_block_redo_it_with_the_same_random_draws(small, tiny):
    from vllm.inputs import TokensPrompt

    engine = small.llm_engine
    scheduler = engine.engine_core.engine_core.scheduler
    fixed = {"algorithm": "low_confidence", "steps": 4}  # one token per step: blocks take 4 steps
    prompts = [list(range(10 + 7 * i, 19 + 8 * i)) for i in range(4)]
    knobs = [fixed, {**fixed, "temperature": 0.8, "seed": 3}, DYNAMIC, {**fixed, "temperature": 1.0, "seed": 5}]
    ref = _reference(tiny, prompts, [DecodeConfig(**k) for k in knobs], 20)
    for i, (prompt, k) in enumerate(zip(prompts, knobs)):
        engine.add_request(f"mid-{i}", TokensPrompt(prompt_token_ids=prompt), _params(k, 20))
    got: dict[str, list[int]] = {}
    mid_block: set[str] = set()
    while engine.has_unfinished_requests():
        got.update((o.request_id, list(o.outputs[0].token_ids)) for o in engine.step() if o.finished)
        if not mid_block and len(scheduler._blocks) >= 2:
            # every running request back to the waiting queue: the ones inside a block restart it
            mid_block = set(scheduler._blocks)
            scheduler.reset_prefix_cache(reset_running_requests=True)
    # a sampling request was preempted between two steps of a block (engine ids carry a suffix)
    assert any(req_id.startswith("mid-1-") for req_id in mid_block)
    assert [got[f"mid-{i}"] for i in range(4)] == [r.token_ids for r in ref]
