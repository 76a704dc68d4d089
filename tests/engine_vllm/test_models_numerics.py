"""The vLLM model classes compute their reference networks' logits, checked through stock vLLM.

Independent of the dLLM executor: a child process with `VLLM_PLUGINS=""` and the in-process
engine registers the config classes and each architecture's model class (the target the plugin
registers, `plugin.VLLM_MODELS`) itself, and runs the stock engine on a tiny checkpoint in
float32 with `prompt_logprobs`. Stock attention is causal, so the returned prompt logprobs must
equal `log_softmax` of the reference network's logits under an explicit causal mask: within
1e-4 on every returned entry (the top-5 and the actual prompt token), with the same top-5 ids.

One engine start per architecture, all in one child (one vLLM import), several prompts each.
Some checkpoints are variants of the tiny one (`VARIANTS`) so that paths a plain tiny
checkpoint leaves at zero or unused are exercised: padded embeddings and biases (LLaDA), a
dense layer, a shared expert and a random expert bias (LLaDA-MoE, LLaDA2), keys LLaDA2's
original ignores (`norm_topk_prob`, `rotary_dim`). Randomised tensors get a control: zeroing
them must move the reference by far more than the tolerance, so the match is not vacuous.

This file is also the child's script (`python test_models_numerics.py JOBS OUT`).
"""
from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

pytest.importorskip("vllm")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from dllm_backend.core.families import FAMILIES  # noqa: E402
from dllm_backend.core.reference.loading import load_reference  # noqa: E402
from dllm_backend.core.tiny import make_tiny  # noqa: E402
from dllm_backend.vllm_adapter.plugin import VLLM_MODELS  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

ARCHS = (
    "LLaDAModelLM", "LLaDAMoEModelLM", "DreamModel", "SDARMoeForCausalLM", "LLaDA2MoeModelLM",
    "Fast_dLLM_QwenForCausalLM",
)
TOL = 1e-4
TOP_K = 5
# lengths 2..23; repeated ids and the tiny vocabulary's last (special) ids included
PROMPTS = [[100, 7], [5, 17, 300, 2000, 7], list(range(7, 30)), [2040, 3, 1999, 45, 45, 45, 800, 12]]

# arch -> (config.json overrides, {tensor-name suffix: std of the random values it gets})
VARIANTS: dict[str, tuple[dict, dict[str, float]]] = {
    # embedding / head rows padded past vocab_size, biases on every projection and the head,
    # grouped KV heads, scaled embeddings and logits
    "LLaDAModelLM": (
        {"embedding_size": 2064, "include_bias": True, "n_kv_heads": 2, "input_emb_norm": True, "scale_logits": True},
        {".bias": 0.05},
    ),
    # layer 0 dense, layer 1 routed + shared expert; the bias moves selection and weights;
    # half-rotary RoPE and clipped q/k/v
    "LLaDAMoEModelLM": (
        {"moe_layer_freq": [0, 1], "shared_expert_intermediate_size": 96, "moe_router_enable_expert_bias": True,
         "partial_rotary_factor": 0.5, "clip_qkv": 1.0},
        {"mlp.expert_bias": 0.05},
    ),
    # the original renormalises and rotates int(head_dim * partial_rotary_factor) channels
    # whatever norm_topk_prob and rotary_dim say
    "LLaDA2MoeModelLM": ({"norm_topk_prob": False, "rotary_dim": 8}, {"gate.expert_bias": 0.1}),
    "SDARMoeForCausalLM": ({"mlp_only_layers": [0]}, {}),
}


# ----- child process: stock vLLM -----
def _serve_one(arch: str, ckpt: str) -> list:
    from vllm import LLM, ModelRegistry, SamplingParams
    from vllm.inputs import TokensPrompt

    ModelRegistry.register_model(arch, VLLM_MODELS[arch])
    llm = LLM(
        model=ckpt, dtype="float32", enforce_eager=True, max_model_len=128, max_num_seqs=len(PROMPTS),
        max_logprobs=TOP_K, seed=0,
    )
    params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=TOP_K)
    outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in PROMPTS], params, use_tqdm=False)
    # per prompt, per position 1..L-1: {token id: (logprob, rank)}
    result = [[{t: (lp.logprob, lp.rank) for t, lp in pos.items()} for pos in o.prompt_logprobs[1:]] for o in outs]
    del llm
    gc.collect()
    return result


def _child(jobs_path: str, out_path: str) -> None:
    from dllm_backend.core.configs import register_configs

    register_configs()
    results = {}
    for arch, ckpt in json.loads(Path(jobs_path).read_text()).items():
        try:
            results[arch] = {"logprobs": _serve_one(arch, ckpt)}
        except Exception:  # one architecture failing must not hide the others' results
            results[arch] = {"error": traceback.format_exc()[-3000:]}
    Path(out_path).write_text(json.dumps(results))


# ----- parent: checkpoints, reference, comparisons -----
def _variant(ckpt: Path, arch: str, overrides: dict, randomised: dict[str, float]) -> None:
    """Rewrites config.json with `overrides` and model.safetensors from the reference network."""
    cfg_path = ckpt / "config.json"
    cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), **overrides}, indent=2))
    family = FAMILIES.get(arch)
    config = family.load_class("config_class").from_pretrained(str(ckpt))
    model = family.load_class("reference_model")(config)
    model.init_weights(torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(1)
    tied = bool(getattr(config, "tie_word_embeddings", False) or getattr(config, "weight_tying", False))
    state = {}
    for name, tensor in model.state_dict().items():
        if tied and name in model.tied_weights:
            continue
        std = next((s for suffix, s in randomised.items() if name.endswith(suffix)), None)
        tensor = tensor.detach().clone() if std is None else torch.randn(tensor.shape, generator=gen) * std
        state[name] = tensor.contiguous()
    save_file(state, str(ckpt / "model.safetensors"), metadata={"format": "pt"})


def _reference_logprobs(ckpt: Path, zeroed: tuple[str, ...] = ()) -> list[torch.Tensor]:
    """Per prompt: log_softmax of the causal reference logits [L, vocab_size], float64."""
    loaded = load_reference(ckpt)
    model = loaded.model
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if zeroed and name.endswith(zeroed):
                tensor.zero_()
    vocab = loaded.family.vocab_size  # NOTE: LLaDA's padded head rows are not served
    out = []
    for prompt in PROMPTS:
        length = len(prompt)
        mask = torch.ones(length, length, dtype=torch.bool).tril()[None]  # [1, L, L] causal
        with torch.no_grad():
            logits = model(torch.tensor([prompt]), torch.arange(length)[None], mask)[0]  # [L, V]
        out.append(torch.log_softmax(logits[:, :vocab].double(), dim=-1))
    return out


def _max_diff(served: list, reference: list[torch.Tensor]) -> float:
    worst = 0.0
    for positions, ref in zip(served, reference):
        for i, entries in enumerate(positions):
            for token, (logprob, _) in entries.items():
                worst = max(worst, abs(logprob - ref[i, int(token)].item()))
    return worst


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny")
    out = {}
    for arch in ARCHS:
        out[arch] = make_tiny(arch, root / arch, seed=0)
        if arch in VARIANTS:
            _variant(out[arch], arch, *VARIANTS[arch])
    return out


@pytest.fixture(scope="module")
def served(checkpoints, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("served")
    jobs, out = work / "jobs.json", work / "out.json"
    jobs.write_text(json.dumps({arch: str(path) for arch, path in checkpoints.items()}))
    env = dict(os.environ, VLLM_PLUGINS="", VLLM_ENABLE_V1_MULTIPROCESSING="0", VLLM_CPU_KVCACHE_SPACE="1")
    proc = subprocess.run(
        [sys.executable, __file__, str(jobs), str(out)], env=env, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0 and out.is_file(), proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(out.read_text())
    # JSON keys are strings: back to token ids
    for r in results.values():
        if "logprobs" in r:
            r["logprobs"] = [[{int(t): v for t, v in pos.items()} for pos in p] for p in r["logprobs"]]
    return results


def test_every_architecture_is_registered_with_the_plugin():
    assert set(VLLM_MODELS) == set(ARCHS) | {"SDARForCausalLM"}


@pytest.mark.parametrize("arch", ARCHS)
def test_prompt_logprobs_equal_causal_reference(arch, checkpoints, served):
    result = served[arch]
    assert "error" not in result, result.get("error")
    reference = _reference_logprobs(checkpoints[arch])
    for prompt, positions, ref in zip(PROMPTS, result["logprobs"], reference):
        assert len(positions) == len(prompt) - 1
        for i, entries in enumerate(positions):
            assert prompt[i + 1] in entries  # the actual prompt token is always returned
            top = sorted(t for t, (_, rank) in entries.items() if rank <= TOP_K)
            assert top == sorted(torch.topk(ref[i], TOP_K).indices.tolist()), (prompt, i)
    worst = _max_diff(result["logprobs"], reference)
    print(f"\n{arch}: max |served - reference| logprob = {worst:.2e}")
    assert worst <= TOL


@pytest.mark.parametrize("arch", [a for a in ARCHS if VARIANTS.get(a, ({}, {}))[1]])
def test_randomised_tensors_matter(arch, checkpoints, served):
    """Control: without the randomised tensors the reference is far from what vLLM served."""
    result = served[arch]
    assert "error" not in result, result.get("error")
    zeroed = tuple(VARIANTS[arch][1])
    worst = _max_diff(result["logprobs"], _reference_logprobs(checkpoints[arch], zeroed))
    print(f"\n{arch}: with {zeroed} zeroed, max |served - reference| logprob = {worst:.2e}")
    assert worst > 100 * TOL


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
