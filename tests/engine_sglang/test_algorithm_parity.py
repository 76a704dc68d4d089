"""Each of our SGLang algorithms, driven by SGLang's own `DllmAlgorithm.run`, gives the reference generator's tokens.

Compared precisely: for the tiny SDAR checkpoint (block 4, SGLang's built-in SDAR flow),
two requests batched together (prompts of 5 and 8 tokens: one ends inside a block, one on
a block boundary; 7 and 6 new tokens) through `run` in both modes (loop-until-resolved and
FDFO one-step-per-round), with the emulated scheduler and stand-in runner of `_flow.py`,
must give exactly the token ids of `core.reference.generators.generate` (SDAR's KV-cached
`block_diffusion` loop) run on each request alone, greedy and sampled (temperature, top_p,
top_k from SGLang's sampling params, the seed from `custom_params["dllm"]`).
For LLaDA (full attention), the same holds against `block_diffusion.generate` on the
LLaDA network: SGLang's block pipeline is the block-causal prefix-cache approximation.
"""
from __future__ import annotations

import pytest

pytest.importorskip("sglang")

from sglang.srt.dllm.config import DllmConfig  # noqa: E402

from dllm_backend.core.policies import DecodeConfig  # noqa: E402
from dllm_backend.core.reference.generators import GenerationRequest, generate, validate_request  # noqa: E402
from dllm_backend.core.reference.generators import block_diffusion  # noqa: E402
from dllm_backend.sglang_adapter.algorithm import algorithm_classes  # noqa: E402
from dllm_backend.sglang_adapter.algorithm_names import SGLANG_ALGORITHMS  # noqa: E402

from ._flow import Sampling, StandInRunner, serve  # noqa: E402

PROMPTS = ([5, 17, 300, 41, 9], [12, 7, 7, 99, 1000, 3, 64, 8])
MAX_TOKENS = (7, 6)
GREEDY = Sampling()
SAMPLED = dict(temperature=0.8, top_p=0.9, top_k=50)


def _algorithm(name: str, block: int, mask_id: int, fdfo: bool, config: dict | None = None):
    cls = algorithm_classes()[name]
    return cls(DllmConfig(
        algorithm=name, algorithm_config=dict(config or {}), block_size=block, mask_id=mask_id,
        max_running_requests=2, first_done_first_out_mode=fdfo,
    ))


def _reference(loaded, policy: str, sampling: dict, seeds: tuple[int, ...], gen=None) -> list[list[int]]:
    out = []
    for prompt, max_tokens, seed in zip(PROMPTS, MAX_TOKENS, seeds):
        request = GenerationRequest(tuple(prompt), max_tokens, DecodeConfig(algorithm=policy, seed=seed, **sampling))
        if gen is None:
            out.append(generate(loaded, request).token_ids)
        else:
            out.append(gen(loaded, validate_request(loaded, request)).token_ids)
    return out


@pytest.mark.parametrize("fdfo", [False, True], ids=["sync", "fdfo"])
@pytest.mark.parametrize("name", SGLANG_ALGORITHMS.names())
def test_sdar_greedy_matches_reference(tiny_loaded, name, fdfo):
    loaded = tiny_loaded("SDARForCausalLM")
    fam = loaded.family
    policy = SGLANG_ALGORITHMS.get(name)
    algorithm = _algorithm(name, fam.block_size, fam.mask_id, fdfo)
    got = serve(
        algorithm, StandInRunner(loaded.model, fam.block_size),
        [(p, m, GREEDY) for p, m in zip(PROMPTS, MAX_TOKENS)], fam.mask_id, fam.eos_ids, fam.vocab_size,
    )
    want = _reference(loaded, policy, {"temperature": 0.0}, (0, 0))
    assert got == want
    assert [len(t) for t in got] == [min(m, len(t)) for m, t in zip(MAX_TOKENS, want)]


@pytest.mark.parametrize("fdfo", [False, True], ids=["sync", "fdfo"])
@pytest.mark.parametrize("name", ["Threshold", "LowConfidenceSchedule", "DreamOrigin", "RandomRemask", "Credit"])
def test_sdar_sampled_matches_reference(tiny_loaded, name, fdfo):
    loaded = tiny_loaded("SDARForCausalLM")
    fam = loaded.family
    algorithm = _algorithm(name, fam.block_size, fam.mask_id, fdfo)
    seeds = (7, 1234)
    requests = [
        (p, m, Sampling(**SAMPLED, custom_params={"dllm": {"seed": s}}))
        for p, m, s in zip(PROMPTS, MAX_TOKENS, seeds)
    ]
    got = serve(algorithm, StandInRunner(loaded.model, fam.block_size), requests, fam.mask_id, fam.eos_ids, fam.vocab_size)
    assert got == _reference(loaded, SGLANG_ALGORITHMS.get(name), SAMPLED, seeds)
    # the seed matters: another seed gives another output for at least one request
    other = [(p, m, Sampling(**SAMPLED, custom_params={"dllm": {"seed": s + 1}})) for p, m, s in zip(PROMPTS, MAX_TOKENS, seeds)]
    algorithm = _algorithm(name, fam.block_size, fam.mask_id, fdfo)
    assert serve(algorithm, StandInRunner(loaded.model, fam.block_size), other, fam.mask_id, fam.eos_ids, fam.vocab_size) != got


def test_yaml_knobs_and_request_override_reach_the_policy(tiny_loaded):
    """steps from the YAML and threshold from custom_params change the decoding exactly as
    the same DecodeConfig does in the reference."""
    loaded = tiny_loaded("SDARForCausalLM")
    fam = loaded.family
    algorithm = _algorithm("LowConfidenceDynamic", fam.block_size, fam.mask_id, False, {"steps": 2})
    requests = [(p, m, Sampling(custom_params={"dllm": {"threshold": 0.0}})) for p, m in zip(PROMPTS, MAX_TOKENS)]
    got = serve(algorithm, StandInRunner(loaded.model, fam.block_size), requests, fam.mask_id, fam.eos_ids, fam.vocab_size)
    assert got == _reference(loaded, "low_confidence_dynamic", {"temperature": 0.0, "steps": 2, "threshold": 0.0}, (0, 0))


@pytest.mark.parametrize("fdfo", [False, True], ids=["sync", "fdfo"])
def test_llada_block_pipeline_matches_block_causal_reference(tiny_loaded, fdfo):
    loaded = tiny_loaded("LLaDAModelLM")
    fam = loaded.family
    block = 4
    algorithm = _algorithm("Threshold", block, fam.mask_id, fdfo, {"threshold": 0.5})
    got = serve(
        algorithm, StandInRunner(loaded.model, block),
        [(p, m, GREEDY) for p, m in zip(PROMPTS, MAX_TOKENS)], fam.mask_id, fam.eos_ids, fam.vocab_size,
    )
    want = []
    for prompt, max_tokens in zip(PROMPTS, MAX_TOKENS):
        request = GenerationRequest(tuple(prompt), max_tokens, DecodeConfig(algorithm="threshold", threshold=0.5), block_size=block)
        want.append(block_diffusion.generate(loaded, validate_request(loaded, request)).token_ids)
    assert got == want
