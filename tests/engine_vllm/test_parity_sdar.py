"""SDAR served by vLLM (CPU) through the dllm_backend plugin gives the reference generator's token ids.

One engine for the module (start-up is ~30-40 s on 2 cores). Prompts of different
lengths (shorter than a block, one and four whole blocks, prompt tails inside a block) are
submitted together, so admissions, denoising steps and folded commits of different
requests share batches.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("vllm")

from dllm_backend.core.policies.base import DecodeConfig  # noqa: E402
from dllm_backend.core.reference.generators import GenerationRequest, generate  # noqa: E402
from dllm_backend.core.reference.loading import load_reference  # noqa: E402
from dllm_backend.core.tiny import make_tiny  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ARCH = "SDARForCausalLM"
# lengths 1, 3, 4 (= one block), 7, 11, 16 (= four blocks): tails of 1, 3, 0, 3, 3, 0 prompt
# tokens in the first block
PROMPTS = [[100], [5, 17, 300], [9, 8, 7, 6], [40, 41, 42, 43, 44, 45, 46], list(range(7, 18)), list(range(600, 616))]
MAX_TOKENS = 10  # not a multiple of the block (4): the last block is cut at max_tokens
ALGORITHMS = {
    # a low threshold commits several positions per step on random weights
    "low_confidence_dynamic": {"algorithm": "low_confidence_dynamic", "threshold": 0.001},
    "low_confidence": {"algorithm": "low_confidence", "steps": 2},
}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny(ARCH, tmp_path_factory.mktemp("sdar"), seed=0)


@pytest.fixture(scope="module")
def llm(checkpoint):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # NOTE: engine core in this process: one interpreter start-up less (~30 s on 2 cores)
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    engine = LLM(
        model=str(checkpoint), enforce_eager=True, dtype="float32", max_model_len=256,
        max_num_batched_tokens=256, max_num_seqs=8, seed=0,
    )
    yield engine
    del engine


def _reference(checkpoint, knobs: dict) -> list:
    loaded = load_reference(checkpoint)
    return [generate(loaded, GenerationRequest(tuple(p), MAX_TOKENS, DecodeConfig(**knobs))) for p in PROMPTS]


def _serve(llm, knobs: dict) -> list[list[int]]:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = [SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, extra_args=dict(knobs)) for _ in PROMPTS]
    outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in PROMPTS], params, use_tqdm=False)
    return [list(o.outputs[0].token_ids) for o in outs]


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_token_ids_equal_reference(llm, checkpoint, name):
    knobs = ALGORITHMS[name]
    ref = _reference(checkpoint, knobs)
    if name == "low_confidence_dynamic":
        # the case is only meaningful if some step commits several tokens
        assert max(max(r.tokens_per_step) for r in ref) > 1
    got = _serve(llm, knobs)
    assert got == [r.token_ids for r in ref]
    assert [len(g) for g in got] == [MAX_TOKENS] * len(PROMPTS)


# one request per algorithm / parameter set, all in one batch; the last one samples
MIXED = [
    {"algorithm": "low_confidence_dynamic", "threshold": 0.001},
    {"algorithm": "credit", "threshold": 0.001},
    {"algorithm": "low_confidence", "steps": 2},
    {"algorithm": "threshold", "threshold": 0.001},
    {"algorithm": "low_confidence_dynamic", "threshold": 0.5, "temperature": 0.9, "seed": 5},
    {"algorithm": "factor", "factor": 1.0},
]


def _serve_each(llm, prompts, knobs_list: list[dict], max_tokens: int = MAX_TOKENS) -> list:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = []
    for knobs in knobs_list:
        knobs = dict(knobs)
        temperature, seed = knobs.pop("temperature", 0.0), knobs.pop("seed", None)
        params.append(SamplingParams(temperature=temperature, seed=seed, max_tokens=max_tokens, extra_args=knobs))
    return llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)


def test_mixed_batch_each_request_equals_its_reference(llm, checkpoint):
    loaded = load_reference(checkpoint)
    ref = [
        generate(loaded, GenerationRequest(tuple(p), MAX_TOKENS, DecodeConfig(**k))).token_ids
        for p, k in zip(PROMPTS, MIXED)
    ]
    outs = _serve_each(llm, PROMPTS, MIXED)
    assert [list(o.outputs[0].token_ids) for o in outs] == ref


def test_sampling_is_deterministic_per_request_and_batch_independent(llm, checkpoint):
    knobs = {"algorithm": "low_confidence", "steps": 2, "temperature": 1.5, "seed": 11}
    loaded = load_reference(checkpoint)
    ref = generate(loaded, GenerationRequest(tuple(PROMPTS[3]), MAX_TOKENS, DecodeConfig(**knobs))).token_ids
    greedy = generate(
        loaded, GenerationRequest(tuple(PROMPTS[3]), MAX_TOKENS, DecodeConfig("low_confidence", steps=2))
    ).token_ids
    assert ref != greedy  # the temperature changes the result, so the seed is what is compared
    alone = _serve_each(llm, [PROMPTS[3]], [knobs])
    batched = _serve_each(llm, PROMPTS, [MIXED[0], MIXED[1], MIXED[2], knobs, MIXED[3], MIXED[5]])
    assert list(alone[0].outputs[0].token_ids) == ref
    assert list(batched[3].outputs[0].token_ids) == ref


def test_nfe_and_steps_are_reported_per_request(llm, checkpoint):
    knobs = ALGORITHMS["low_confidence_dynamic"]
    ref = _reference(checkpoint, knobs)
    outs = _serve_each(llm, PROMPTS, [knobs] * len(PROMPTS))
    for o, r in zip(outs, ref):
        stats = o.kv_transfer_params["dllm"]
        assert stats["denoising_steps"] == r.steps
        # the admission (every whole prompt block in one forward; a prompt shorter than a
        # block is admitted with one chunk, discarded), then one forward per step: each
        # finished block's commit rides in the next block's first step
        assert stats["nfe"] == 1 + r.steps
        n = len(o.outputs[0].token_ids)
        assert stats["tokens_per_forward"] == pytest.approx(n / stats["nfe"], abs=1e-12)


def test_unseeded_samples_of_one_request_differ_in_process(llm):
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    # in-process, vLLM hands the n children of an unseeded request one shared SamplingParams
    params = SamplingParams(temperature=1.0, max_tokens=8, n=3)
    out = llm.generate([TokensPrompt(prompt_token_ids=PROMPTS[1])], params, use_tqdm=False)[0]
    assert len({tuple(c.token_ids) for c in out.outputs}) == 3
    assert params.seed is None  # the caller's params are left alone
    # without max_tokens, LLM.generate's default params carry the family's default canvas
    assert llm.get_default_sampling_params().max_tokens == 128


def test_no_denoising_state_left_after_requests(llm):
    # every request above has finished; their ids reach the runner with the next engine
    # step (the in-process engine stops stepping when nothing is unfinished)
    llm.llm_engine.step()
    assert llm.collective_rpc("dllm_live_requests") == [{"blocks": 0, "step_counters": 0, "settings": 0}]
    scheduler = llm.llm_engine.engine_core.engine_core.scheduler
    assert (scheduler._blocks, scheduler._committed, scheduler._geo, scheduler._stats) == ({}, {}, {}, {})


def test_aborted_request_leaves_no_state(llm):
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    engine = llm.llm_engine
    params = SamplingParams(temperature=0.0, max_tokens=40, extra_args={"algorithm": "low_confidence", "steps": 4})
    engine.add_request("to-abort", TokensPrompt(prompt_token_ids=[5, 6, 7, 8, 9]), params)
    for _ in range(10):  # until the request is mid-way through a block
        engine.step()
        if llm.collective_rpc("dllm_live_requests") == [{"blocks": 1, "step_counters": 1, "settings": 1}]:
            break
    assert llm.collective_rpc("dllm_live_requests") == [{"blocks": 1, "step_counters": 1, "settings": 1}]
    engine.abort_request(["to-abort"])
    while engine.has_unfinished_requests():
        engine.step()
    engine.step()  # delivers the finished id to the runner
    assert llm.collective_rpc("dllm_live_requests") == [{"blocks": 0, "step_counters": 0, "settings": 0}]


def test_abort_mid_block_returns_every_kv_block(llm):
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    engine = llm.llm_engine
    pool = engine.engine_core.engine_core.scheduler.kv_cache_manager.block_pool
    baseline = pool.get_num_free_blocks()
    params = SamplingParams(temperature=0.0, max_tokens=200, extra_args={"algorithm": "low_confidence", "steps": 4})
    engine.add_request("abort-kv", TokensPrompt(prompt_token_ids=list(range(3, 40))), params)
    for _ in range(30):  # past the prefill, into the denoising of a block
        engine.step()
        if llm.collective_rpc("dllm_live_requests") == [{"blocks": 1, "step_counters": 1, "settings": 1}]:
            break
    assert llm.collective_rpc("dllm_live_requests") == [{"blocks": 1, "step_counters": 1, "settings": 1}]
    assert pool.get_num_free_blocks() < baseline
    engine.abort_request(["abort-kv"])
    while engine.has_unfinished_requests():
        engine.step()
    engine.step()
    assert pool.get_num_free_blocks() == baseline
    assert llm.collective_rpc("dllm_live_requests") == [{"blocks": 0, "step_counters": 0, "settings": 0}]


@pytest.mark.parametrize("extra", [{"cache_mode": "prefix"}, {"block_size": 8}, {"cfg_scale": 1.0}])
def test_bad_serving_option_is_rejected_naming_it(llm, extra):
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=4, extra_args=extra)
    with pytest.raises(Exception, match=next(iter(extra))):
        llm.generate([{"prompt_token_ids": [1, 2, 3]}], params, use_tqdm=False)
    # the engine is still serving
    assert len(_serve(llm, ALGORITHMS["low_confidence"])) == len(PROMPTS)


def test_bad_decode_knob_is_rejected_naming_the_field(llm):
    from vllm import SamplingParams

    params = SamplingParams(max_tokens=4, extra_args={"algorithm": "low_confidence_dynamic", "threshold": 1.5})
    with pytest.raises(Exception, match="threshold"):
        llm.generate([{"prompt_token_ids": [1, 2, 3]}], params, use_tqdm=False)


_WITHOUT_PLUGIN = """
import sys
from vllm import LLM
if __name__ == "__main__":
    try:
        LLM(model=sys.argv[1], enforce_eager=True, max_model_len=64)
    except Exception as e:
        print("REJECTED:", type(e).__name__, str(e)[:1000])
        sys.exit(3)
    print("ACCEPTED")
"""


def test_architecture_rejected_without_the_plugin(checkpoint, tmp_path):
    script = tmp_path / "without_plugin.py"
    script.write_text(_WITHOUT_PLUGIN)
    env = dict(os.environ, VLLM_PLUGINS="", VLLM_CPU_KVCACHE_SPACE="1")
    proc = subprocess.run(
        [sys.executable, str(script), str(checkpoint)], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 3, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "REJECTED" in proc.stdout
    # without the plugin vLLM does not know the `sdar` config (its auto_map points to remote
    # code the checkpoint does not ship), so it refuses the checkpoint before any model lookup
    assert "trust_remote_code" in proc.stdout


def test_hook_is_registered_for_dllm_architectures_only():
    from vllm.model_executor.models.config import MODELS_CONFIG_MAP

    from dllm_backend.vllm_adapter.config_hook import DllmConfigHook
    from dllm_backend.vllm_adapter.plugin import register

    register()
    register()  # idempotent
    from dllm_backend.vllm_adapter.plugin import VLLM_MODELS

    assert MODELS_CONFIG_MAP[ARCH] is DllmConfigHook
    assert all(MODELS_CONFIG_MAP[arch] is DllmConfigHook for arch in VLLM_MODELS)
    assert all(cls is not DllmConfigHook for arch, cls in MODELS_CONFIG_MAP.items() if arch not in VLLM_MODELS)
