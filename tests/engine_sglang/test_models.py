"""Our SGLang model classes: checkpoint tensor names (CPU) and a served tiny model (GPU only).

On CPU: every tensor of the tiny LLaDA checkpoint maps to the SGLang Llama name it loads
into, and the Qwen2-layout families (Dream, Fast-dLLM v2) use Qwen2's names unchanged.
Building the models needs SGLang's distributed/runtime context and CUDA kernels: the
served test below starts SGLang's Engine on a tiny checkpoint and runs unchanged on a GPU.
"""
from __future__ import annotations

import pytest

pytest.importorskip("sglang")

import re  # noqa: E402

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from dllm_backend.sglang_adapter.models.llada import llada_to_llama_name  # noqa: E402

_LLAMA_LAYER = re.compile(
    r"^model\.layers\.\d+\.(input_layernorm|post_attention_layernorm|self_attn\.(q|k|v|o)_proj"
    r"|mlp\.(gate|up|down)_proj)\.weight$"
)


def test_llada_names_map_onto_llama(tiny_dir):
    names = sorted(load_file(str(tiny_dir("LLaDAModelLM") / "model.safetensors")))
    mapped = [llada_to_llama_name(n) for n in names]
    per_layer = [m for m in mapped if m.startswith("model.layers.")]
    assert all(_LLAMA_LAYER.match(m) for m in per_layer)
    assert len(per_layer) == 9 * 2  # 9 tensors per layer, 2 layers in the tiny checkpoint
    assert sorted(m for m in mapped if not m.startswith("model.layers.")) == [
        "lm_head.weight", "model.embed_tokens.weight", "model.norm.weight",
    ]
    assert len(set(mapped)) == len(mapped)
    with pytest.raises(ValueError, match="unknown LLaDA checkpoint tensor 'model.transformer.rope'"):
        llada_to_llama_name("model.transformer.rope")


@pytest.mark.parametrize("arch", ["DreamModel", "Fast_dLLM_QwenForCausalLM"])
def test_qwen2_families_use_qwen2_names(tiny_dir, arch):
    names = load_file(str(tiny_dir(arch) / "model.safetensors"))
    qwen2 = re.compile(
        r"^(model\.embed_tokens|model\.norm|lm_head|model\.layers\.\d+\.(input_layernorm|post_attention_layernorm"
        r"|self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj))\.(weight|bias)$"
    )
    assert all(qwen2.match(n) for n in names)


def test_shift_block_logits():
    from dllm_backend.sglang_adapter.models._dllm import shift_block_logits

    raw = torch.arange(2 * 3 * 2, dtype=torch.float32).view(6, 2)  # bs 2, B 3, V 2
    out = shift_block_logits(raw, 2).view(2, 3, 2)
    assert out[:, :, 0].tolist() == [[0.0, 0.0, 2.0], [6.0, 6.0, 8.0]]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="SGLang serving needs CUDA kernels (sgl-kernel, flashinfer)")
@pytest.mark.parametrize("arch", ["LLaDAModelLM", "DreamModel", "SDARForCausalLM"])
def test_served_tiny_model_matches_reference(tiny_dir, tiny_loaded, arch):
    """SGLang's Engine (float32, greedy Threshold) gives the block-causal reference's tokens."""
    import sglang

    from dllm_backend.core.policies import DecodeConfig
    from dllm_backend.core.reference.generators import GenerationRequest, validate_request
    from dllm_backend.core.reference.generators import block_diffusion
    from dllm_backend.sglang_adapter.plugin import register

    register()
    loaded = tiny_loaded(arch)
    block = 4 if arch == "SDARForCausalLM" else 32
    prompt = [5, 17, 300, 41, 9]
    engine = sglang.Engine(
        model_path=str(tiny_dir(arch)), dllm_algorithm="Threshold", dtype="float32",
        skip_tokenizer_init=True, mem_fraction_static=0.3, max_running_requests=1,
    )
    try:
        out = engine.generate(input_ids=prompt, sampling_params={"temperature": 0, "max_new_tokens": 8})
    finally:
        engine.shutdown()
    request = GenerationRequest(tuple(prompt), 8, DecodeConfig(algorithm="threshold"), block_size=block)
    want = block_diffusion.generate(loaded, validate_request(loaded, request)).token_ids
    if arch != "DreamModel":  # Dream's first block position differs (see models/_dllm.py)
        assert out["output_ids"] == want
    assert len(out["output_ids"]) == len(want)
