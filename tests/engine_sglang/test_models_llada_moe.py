"""LLaDA-MoE on SGLang: built on CPU from SGLang's layers, every tiny-checkpoint tensor loads into place.

Construction needs SGLang's runtime context (a CPU `ServerArgs` published for this test only);
serving needs CUDA kernels (RadixAttention backends, fused MoE) and is a GPU test.
"""
from __future__ import annotations

import pytest

pytest.importorskip("sglang")

import torch  # noqa: E402
from safetensors.torch import load_file  # noqa: E402

from dllm_backend.sglang_adapter.models.llada_moe import Target, checkpoint_target  # noqa: E402

ARCH = "LLaDAMoEModelLM"


def test_checkpoint_targets():
    assert checkpoint_target("model.layers.1.self_attn.k_proj.weight") == Target(
        "model.layers.1.self_attn.qkv_proj.weight", "k"
    )
    assert checkpoint_target("model.layers.0.shared_expert.up_proj.weight") == Target(
        "model.layers.0.shared_expert.gate_up_proj.weight", 1
    )
    assert checkpoint_target("model.layers.0.mlp.gate_proj.weight") == Target(
        "model.layers.0.mlp.gate_up_proj.weight", 0
    )
    assert checkpoint_target("model.layers.0.mlp.experts.7.up_proj.weight") == Target(
        "model.layers.0.mlp.experts.w13_weight", "w3", 7
    )
    assert checkpoint_target("model.layers.0.mlp.experts.3.down_proj.weight") == Target(
        "model.layers.0.mlp.experts.w2_weight", "w2", 3
    )
    assert checkpoint_target("model.layers.0.mlp.gate.weight") == Target("model.layers.0.mlp.gate.weight")
    norm = "model.layers.0.self_attn.q_norm.weight"
    assert checkpoint_target(norm) == Target(norm)


@pytest.fixture(scope="module")
def built(tiny_dir):
    """(model, checkpoint tensors) of the tiny checkpoint, built on CPU inside a private SGLang context."""
    import sglang.srt.layers.rotary_embedding.base as rope_base
    from sglang.srt import runtime_context as rc
    from sglang.srt.server_args import ServerArgs
    from transformers import AutoConfig

    from dllm_backend.sglang_adapter.models.llada_moe import LLaDAMoEModelLM
    from dllm_backend.sglang_adapter.plugin import register

    register()
    path = tiny_dir(ARCH)
    args = ServerArgs(model_path=str(path), device="cpu", skip_tokenizer_init=True, dtype="float32")
    context = rc.create_context(args, role="scheduler", ranks=rc.SpawnRanks(world_rank=0))
    mp = pytest.MonkeyPatch()
    # NOTE: SGLang's RotaryEmbedding picks vLLM's CPU kernel unless its CPU engine flag was set at import
    mp.setattr(rope_base, "_is_cpu", True)
    try:
        with rc.use_context(context), torch.device("cpu"):
            model = LLaDAMoEModelLM(AutoConfig.from_pretrained(path)).float()
    finally:
        mp.undo()
    return model, load_file(str(path / "model.safetensors"))


def test_every_checkpoint_tensor_loads(built):
    model, tensors = built
    loaded = model.load_weights(tensors.items())
    assert loaded == set(dict(model.named_parameters()))  # nothing left unloaded
    assert len(tensors) == 2 * (4 + 2 + 2 + 1 + 8 * 3) + 3  # 2 layers, 8 experts, embed/norm/lm_head
    params = dict(model.named_parameters())
    attn = "model.layers.1.self_attn."
    qkv = torch.cat([tensors[f"{attn}{p}_proj.weight"] for p in "qkv"])
    assert torch.equal(params[f"{attn}qkv_proj.weight"], qkv)
    experts = "model.layers.0.mlp.experts."
    w13 = torch.cat([tensors[f"{experts}5.gate_proj.weight"], tensors[f"{experts}5.up_proj.weight"]])
    assert torch.equal(params[f"{experts}w13_weight"][5], w13)  # [2I, D]
    assert torch.equal(params[f"{experts}w2_weight"][5], tensors[f"{experts}5.down_proj.weight"])  # [D, I]
    assert torch.equal(params["lm_head.weight"], tensors["lm_head.weight"])


def test_layout_of_built_model(built):
    model, _ = built
    attn = model.model.layers[0].self_attn
    assert (attn.head_dim, attn.q_size, attn.kv_size) == (32, 128, 128)
    assert tuple(attn.q_norm.weight.shape) == (32,)  # per-head q/k norm
    mlp = model.model.layers[0].mlp
    assert tuple(mlp.experts.w13_weight.shape) == (8, 128, 128) and tuple(mlp.experts.w2_weight.shape) == (8, 128, 64)
    assert model.model.layers[0].shared_expert is None and mlp.expert_bias is None
    assert model.logits_processor.return_full_logits is True


@pytest.mark.skipif(not torch.cuda.is_available(), reason="SGLang serving needs CUDA kernels (sgl-kernel, flashinfer)")
def test_served_tiny_moe_matches_reference(tiny_dir, tiny_loaded):
    """SGLang's Engine (float32, greedy Threshold) gives the reference's tokens for the tiny LLaDA-MoE."""
    import sglang

    from dllm_backend.core.policies import DecodeConfig
    from dllm_backend.core.reference.generators import GenerationRequest, block_diffusion, validate_request
    from dllm_backend.sglang_adapter.plugin import register

    register()
    prompt = [5, 17, 300, 41, 9]
    engine = sglang.Engine(
        model_path=str(tiny_dir(ARCH)), dllm_algorithm="Threshold", dtype="float32",
        skip_tokenizer_init=True, mem_fraction_static=0.3, max_running_requests=1,
    )
    try:
        out = engine.generate(input_ids=prompt, sampling_params={"temperature": 0, "max_new_tokens": 8})
    finally:
        engine.shutdown()
    loaded = tiny_loaded(ARCH)
    request = GenerationRequest(tuple(prompt), 8, DecodeConfig(algorithm="threshold"), block_size=32)
    assert out["output_ids"] == block_diffusion.generate(loaded, validate_request(loaded, request)).token_ids
