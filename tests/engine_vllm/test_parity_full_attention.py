"""Full-attention dLLMs (LLaDA, LLaDA-MoE, Dream) served by vLLM (CPU) give the reference generator's token ids.

The canvas is prompt + max_tokens; blocks of 4 from the generation start, max_tokens 10
(blocks 4, 4, 2). Every cache mode is checked against the reference generator's own
mode (`exact` recomputes prompt + canvas every step; `prefix` / `dual` are Fast-dLLM's
approximations). Each engine is started with the server default cache mode "dual"
(`--additional-config '{"dllm": {"cache_mode": "dual"}}'`), so requests without `cache_mode` must follow dual. One engine
per architecture (module-scoped); prompts of 1, 3, 4, 7 and 11 tokens go in together.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("vllm")

from dllm_backend.core.policies.base import DecodeConfig  # noqa: E402
from dllm_backend.core.reference.generators import GenerationRequest, generate  # noqa: E402
from dllm_backend.core.reference.loading import load_reference  # noqa: E402
from dllm_backend.core.tiny import make_tiny  # noqa: E402
from dllm_backend.vllm_adapter.plugin import VLLM_MODELS  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ARCHS = ["LLaDAModelLM", "LLaDAMoEModelLM", "DreamModel"]
PROMPTS = [[100], [5, 17, 300], [9, 8, 7, 6], [40, 41, 42, 43, 44, 45, 46], list(range(7, 18))]
MAX_TOKENS = 10  # blocks of 4: the last block is 2 long
BLOCK = 4
SERVER_DEFAULT_MODE = "dual"
THRESHOLD = {"algorithm": "threshold", "threshold": 0.001}  # commits several tokens per step
FIXED = {"algorithm": "low_confidence", "steps": 2}  # 2 tokens per step on a block of 4


@pytest.fixture(scope="module", params=ARCHS)
def arch(request):
    if request.param not in VLLM_MODELS:
        pytest.skip(f"no vLLM model for {request.param} yet (plugin.VLLM_MODELS)")
    return request.param


@pytest.fixture(scope="module")
def checkpoint(arch, tmp_path_factory):
    return make_tiny(arch, tmp_path_factory.mktemp(arch), seed=0)


@pytest.fixture(scope="module")
def llm(checkpoint):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    from vllm import LLM

    engine = LLM(
        model=str(checkpoint), enforce_eager=True, dtype="float32", max_model_len=256,
        max_num_batched_tokens=256, max_num_seqs=8, seed=0,
        additional_config={"dllm": {"cache_mode": SERVER_DEFAULT_MODE}},
    )
    yield engine
    del engine


def _reference(checkpoint, prompts, cases: list[dict]) -> list:
    loaded = load_reference(checkpoint)
    out = []
    for p, case in zip(prompts, cases):
        knobs = {k: v for k, v in case.items() if k not in ("block_size", "cache_mode")}
        req = GenerationRequest(
            tuple(p), MAX_TOKENS, DecodeConfig(**knobs), block_size=case.get("block_size"),
            cache_mode=case.get("cache_mode", SERVER_DEFAULT_MODE),
        )
        out.append(generate(loaded, req))
    return out


def _serve(llm, prompts, cases: list[dict]) -> list:
    from vllm import SamplingParams
    from vllm.inputs import TokensPrompt

    params = [SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, extra_args=dict(c)) for c in cases]
    return llm.generate([TokensPrompt(prompt_token_ids=p) for p in prompts], params, use_tqdm=False)


@pytest.mark.parametrize("mode", ["exact", "prefix", "dual"])
@pytest.mark.parametrize("algo", ["threshold", "fixed"])
def test_token_ids_equal_reference_per_cache_mode(llm, checkpoint, mode, algo):
    case = dict(THRESHOLD if algo == "threshold" else FIXED, block_size=BLOCK, cache_mode=mode)
    ref = _reference(checkpoint, PROMPTS, [case] * len(PROMPTS))
    # the case is only meaningful if some step commits several tokens
    assert max(max(r.tokens_per_step) for r in ref) > 1
    outs = _serve(llm, PROMPTS, [case] * len(PROMPTS))
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]
    # every request denoised with exactly the reference's number of policy steps
    assert [o.kv_transfer_params["dllm"]["denoising_steps"] for o in outs] == [r.steps for r in ref]


def test_mixed_batch_of_cache_modes_algorithms_and_blocks(llm, checkpoint):
    cases = [
        dict(THRESHOLD, block_size=BLOCK, cache_mode="exact"),
        dict(FIXED, block_size=BLOCK, cache_mode="dual"),
        dict(THRESHOLD, block_size=3, cache_mode="prefix"),
        dict(FIXED, block_size=BLOCK),  # the server default mode (dual)
        {"algorithm": "credit", "threshold": 0.001, "block_size": 5, "cache_mode": "exact"},
    ]
    ref = _reference(checkpoint, PROMPTS, cases)
    outs = _serve(llm, PROMPTS, cases)
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]


def test_family_default_block_and_server_default_mode(llm, checkpoint):
    # no block_size / cache_mode: the family's block (Dream: the whole canvas; LLaDA: 32,
    # cut to the canvas) and the server's mode. NOTE: a rank-based one-token-per-step
    # algorithm (Dream's default, entropy) is not used here: on random tiny weights its
    # ranking has near-ties (entropy gaps ~1e-6) that kernel rounding may flip.
    ref = _reference(checkpoint, PROMPTS, [THRESHOLD] * len(PROMPTS))
    assert max(max(r.tokens_per_step) for r in ref) > 1
    outs = _serve(llm, PROMPTS, [THRESHOLD] * len(PROMPTS))
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]


def _with_extra_stop(checkpoint, out, outputs: list[list[int]]):
    """A copy of the checkpoint whose generation config adds, as a stop id, a token first
    generated in the middle of one of `outputs` (so a request stops inside a block)."""
    import shutil

    stop = next(tok for ids in outputs for k, tok in enumerate(ids) if 2 <= k < 8 and tok not in ids[:k])
    shutil.copytree(checkpoint, out, dirs_exist_ok=True)
    gen = json.loads((out / "generation_config.json").read_text())
    ids = gen.get("eos_token_id")
    gen["eos_token_id"] = ([] if ids is None else [ids] if isinstance(ids, int) else list(ids)) + [stop]
    (out / "generation_config.json").write_text(json.dumps(gen))
    return out


def test_stop_id_inside_a_block_ends_like_the_reference(checkpoint, arch, tmp_path):
    if arch != "DreamModel":
        pytest.skip("one extra start-up is enough: Dream")
    from vllm import LLM

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

    cases = [dict(THRESHOLD, block_size=BLOCK, cache_mode=m) for m in ("exact", "prefix", "dual", "dual", "exact")]
    stop_ckpt = _with_extra_stop(checkpoint, tmp_path / "stop", [r.token_ids for r in _reference(checkpoint, PROMPTS, cases)])
    ref = _reference(stop_ckpt, PROMPTS, cases)
    assert "stop" in [r.finish_reason for r in ref]
    engine = LLM(
        model=str(stop_ckpt), enforce_eager=True, dtype="float32", max_model_len=256,
        max_num_batched_tokens=256, max_num_seqs=8, seed=0,
    )
    outs = _serve(engine, PROMPTS, cases)
    del engine
    assert [list(o.outputs[0].token_ids) for o in outs] == [r.token_ids for r in ref]
    assert [o.outputs[0].finish_reason for o in outs] == [r.finish_reason for r in ref]


_MULTIPROCESS = """
import json, sys
from vllm import LLM, SamplingParams
if __name__ == "__main__":
    model, cases, prompts, max_tokens = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3]), int(sys.argv[4])
    llm = LLM(model=model, enforce_eager=True, dtype="float32", max_model_len=256,
              max_num_batched_tokens=256, max_num_seqs=8, seed=0)
    params = [SamplingParams(temperature=0.0, max_tokens=max_tokens, extra_args=c) for c in cases]
    outs = llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
    print("RESULT", json.dumps([[list(o.outputs[0].token_ids), o.kv_transfer_params] for o in outs]))
"""


def test_multiprocess_engine_gives_the_same_tokens(checkpoint, arch, tmp_path):
    if arch != "DreamModel":
        pytest.skip("one multiprocess start-up is enough: Dream (shifted logits, dual mode)")
    cases = [dict(THRESHOLD, block_size=BLOCK, cache_mode=m) for m in ("dual", "prefix", "exact", "dual", "dual")]
    ref = _reference(checkpoint, PROMPTS, cases)
    script = tmp_path / "multiprocess.py"
    script.write_text(_MULTIPROCESS)
    env = dict(os.environ, VLLM_ENABLE_V1_MULTIPROCESSING="1", VLLM_CPU_KVCACHE_SPACE="1")
    proc = subprocess.run(
        [sys.executable, str(script), str(checkpoint), json.dumps(cases), json.dumps(PROMPTS), str(MAX_TOKENS)],
        env=env, capture_output=True, text=True, timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))
    got = json.loads(line[len("RESULT "):])
    assert [g[0] for g in got] == [r.token_ids for r in ref]
    # the per-request counters cross the process boundary with the final output
    assert [g[1]["dllm"]["denoising_steps"] for g in got] == [r.steps for r in ref]
