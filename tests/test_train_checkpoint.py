"""Checkpoints written by the training recipes load unchanged: dLLMs by the core loader, the AR twin by stock transformers."""
from __future__ import annotations

import json

import pytest
import torch

from dllm_backend.core.reference.loading import load_reference
from dllm_backend.train.ar_twin import greedy_generate, load_ar_twin
from dllm_backend.train.checkpoint import build_network, save_weights, write_config_and_tokenizer
from dllm_backend.train.data import encode
from dllm_backend.train.recipes import HEAD_DIM, HIDDEN, LAYERS, RECIPES
from dllm_backend.train.tasks import make_example


def _write(kind: str, out, seed: int = 0):
    recipe = RECIPES.get(kind)
    config, tok = write_config_and_tokenizer(recipe, out)
    model = build_network(recipe, config, seed)
    save_weights(model, out / "model.safetensors")
    return recipe, model, tok


@pytest.mark.parametrize("kind", ["llada", "sdar"])
def test_dllm_checkpoint_round_trips_through_load_reference(kind: str, tmp_path) -> None:
    recipe, model, tok = _write(kind, tmp_path)
    loaded = load_reference(tmp_path)
    assert loaded.family.spec.architecture == recipe.architecture
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    ids = json.loads((tmp_path / "config.json").read_text())
    # the mask id of config.json is the tokenizer's mask token
    assert loaded.family.mask_id == tok.convert_tokens_to_ids(tok.mask_token)
    assert loaded.family.mask_id == ids["mask_token_id"]


def test_encoding_one_token_per_digit_and_chat_ending(tmp_path) -> None:
    recipe, _, tok = _write("llada", tmp_path)
    ex = make_example("reverse", [1, 2, 3] * 6)  # 18 digits
    enc = encode(ex, tok, recipe)
    eot, eos = tok.convert_tokens_to_ids("<|eot_id|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    assert len(enc.answer) == recipe.gen_length == 24
    assert enc.answer[18:] == (eot,) + (eos,) * 5
    assert tok.decode(enc.answer[:18]) == ex.answer
    text = tok.decode(list(enc.prompt))
    assert text.endswith("<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert "reverse: 1 2 3" in text


def test_ar_twin_is_a_stock_qwen3_checkpoint(tmp_path) -> None:
    from transformers import AutoConfig, Qwen3ForCausalLM

    _, model, tok = _write("ar", tmp_path, seed=3)
    config = AutoConfig.from_pretrained(str(tmp_path))
    assert config.model_type == "qwen3" and config.architectures == ["Qwen3ForCausalLM"]
    assert (config.hidden_size, config.head_dim, config.num_hidden_layers) == (HIDDEN, HEAD_DIM, LAYERS)
    hf = Qwen3ForCausalLM.from_pretrained(str(tmp_path), dtype=torch.float32).eval()
    ids = torch.tensor([[5, 17, 300, 42, 9, 1000, 3]])
    causal = torch.ones(7, 7, dtype=torch.bool).tril()[None]
    with torch.no_grad():
        want = hf(ids).logits
        got = model.eval()(ids, torch.arange(7)[None], causal)
    assert torch.allclose(got, want, atol=1e-5), float((got - want).abs().max())
    # greedy decoding with the KV cache == argmax of full causal recomputes
    ar = load_ar_twin(tmp_path)
    out = greedy_generate(ar, (5, 17, 300), max_tokens=4)
    seq = [5, 17, 300]
    with torch.no_grad():
        for _ in range(4):
            seq.append(int(hf(torch.tensor([seq])).logits[0, -1].argmax()))
    assert out.token_ids == seq[3:3 + len(out.token_ids)]
    assert out.nfe == len(out.token_ids) and out.tokens_per_step == [1] * len(out.token_ids)
    assert ar.eos_ids == (tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>"))


@pytest.mark.parametrize("kind, block", [("sdar8", 8), ("sdar16", 16)])
def test_wider_block_recipe_writes_the_sdar_layout_with_its_block(kind: str, block: int, tmp_path) -> None:
    from dllm_backend.core.families import resolve_dir

    recipe, model, tok = _write(kind, tmp_path)
    assert recipe.block_size == block
    config = json.loads((tmp_path / "config.json").read_text())
    assert (config["architectures"], config["model_type"], config["block_size"]) == (["SDARForCausalLM"], "sdar", block)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
        "tokenizer.json", "tokenizer_config.json",
    ]
    assert resolve_dir(tmp_path).block_size == block  # the family resolver reads it from config.json
    loaded = load_reference(tmp_path)
    assert loaded.family.block_size == block
    assert sorted(loaded.model.state_dict()) == sorted(model.state_dict())
    assert all(torch.equal(loaded.model.state_dict()[k], t) for k, t in model.state_dict().items())


def test_wider_block_recipes_differ_from_sdar_only_in_the_block(tmp_path) -> None:
    """Same network, tokenizer, data and schedule as the block-4 model: config.json differs in block_size only."""
    configs = {}
    for kind in ("sdar", "sdar8", "sdar16"):
        write_config_and_tokenizer(RECIPES.get(kind), tmp_path / kind)
        configs[kind] = json.loads((tmp_path / kind / "config.json").read_text())
        assert (tmp_path / kind / "tokenizer.json").read_bytes() == (tmp_path / "sdar" / "tokenizer.json").read_bytes()
    for kind in ("sdar8", "sdar16"):
        diff = {k for k in configs["sdar"] if configs["sdar"][k] != configs[kind].get(k)}
        assert diff == {"block_size"}, diff
        assert set(configs[kind]) == set(configs["sdar"])


def test_recipe_refuses_a_block_that_differs_from_its_config() -> None:
    import dataclasses

    with pytest.raises(ValueError, match="block_size 4 differs from the config's block_size 8"):
        dataclasses.replace(RECIPES.get("sdar8"), block_size=4)
