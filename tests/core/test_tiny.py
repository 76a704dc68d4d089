"""Tests of `core.tiny`: tiny checkpoints in each family's exact HF layout.

Every architecture's checkpoint must load with stock transformers (tokenizer, chat template,
config without remote code), resolve to the family's special ids in the tiny vocabulary,
load into the reference network, and be byte-identical for one seed.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoTokenizer

from dllm_backend.core.configs import register_configs
from dllm_backend.core.families import FAMILIES, resolve_dir
from dllm_backend.core.reference.loading import load_reference
from dllm_backend.core.tiny import TINY_ARCHITECTURES, TINY_VOCAB, make_tiny
from dllm_backend.core.tiny.checkpoint import tiny_config_dict
from dllm_backend.core.tiny.specs import TOKENIZER_SPECS
from dllm_backend.core.tiny.tokenizer import build_tokenizer

QWEN2 = ("DreamModel", "Fast_dLLM_QwenForCausalLM")
QWEN3 = ("SDARForCausalLM", "SDARMoeForCausalLM")
LING = ("LLaDA2MoeModelLM", "LLaDAMoEModelLM")

# (mask id, stop ids in resolve order: generation_config eos, config eos, the spec's stop tokens)
EXPECTED_IDS = {
    "LLaDAModelLM": (2044, (2043, 2047)),  # <|mdm_mask|>; <|endoftext|>, <|eot_id|>
    "LLaDAMoEModelLM": (2042, (2041, 2045)),  # <|mask|>; <|endoftext|>, <|role_end|>
    "LLaDA2MoeModelLM": (2042, (2041, 2045)),
    "DreamModel": (2047, (2024, 2026)),  # <|mask|>; <|endoftext|>, <|im_end|>
    "SDARForCausalLM": (2047, (2023, 2021)),  # <|MASK|>; <|im_end|>, <|endoftext|>
    "SDARMoeForCausalLM": (2047, (2023, 2021)),
    "Fast_dLLM_QwenForCausalLM": (2047, (2027, 2025)),  # |<MASK>|; <|im_end|>, <|endoftext|>
}
SENTENCE = "Hello, world! def f(x): return 42"
SENTENCE_IDS = [899, 11, 270, 267, 554, 0, 406, 275, 7, 87, 657, 362, 1690]
CHAT = [
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Add 2 and 3."},
]
RENDERED = {
    "LLaDAModelLM": (
        "<|startoftext|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nAdd 2 and 3.<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    **dict.fromkeys(QWEN2, (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nAdd 2 and 3.<|im_end|>\n<|im_start|>assistant\n"
    )),
    **dict.fromkeys(QWEN3, (
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
        "<|im_start|>user\nAdd 2 and 3.<|im_end|>\n<|im_start|>assistant\n"
    )),
    **dict.fromkeys(LING, (
        "<role>SYSTEM</role>detailed thinking off<|role_end|><role>HUMAN</role>Hi there<|role_end|>"
        "<role>ASSISTANT</role>Hello!<|role_end|><role>HUMAN</role>Add 2 and 3.<|role_end|>"
        "<role>ASSISTANT</role>"
    )),
}

# how often each role marker occurs (as one token) in CHAT rendered with a generation prompt
MARKERS = {
    "LLaDAModelLM": {"<|startoftext|>": 1, "<|start_header_id|>": 4, "<|end_header_id|>": 4, "<|eot_id|>": 3},
    **dict.fromkeys(QWEN2, {"<|im_start|>": 5, "<|im_end|>": 4}),
    **dict.fromkeys(QWEN3, {"<|im_start|>": 4, "<|im_end|>": 3}),
    **dict.fromkeys(LING, {"<role>": 5, "</role>": 5, "<|role_end|>": 4}),
}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory):
    """arch -> directory of its seed-0 tiny checkpoint (built once per module)."""
    root = tmp_path_factory.mktemp("tiny")
    built: dict[str, Path] = {}

    def get(arch: str) -> Path:
        if arch not in built:
            built[arch] = make_tiny(arch, root / arch, seed=0)
        return built[arch]

    return get


def test_every_family_has_a_tiny_checkpoint():
    assert sorted(TINY_ARCHITECTURES) == sorted(FAMILIES.names()) == sorted(TOKENIZER_SPECS.names())
    assert len(TINY_ARCHITECTURES) == 7


def test_unknown_architecture_lists_the_valid_ones(tmp_path: Path):
    with pytest.raises(ValueError, match="LLaDAModelLM"):
        make_tiny("GPT2LMHeadModel", tmp_path)
    with pytest.raises(ValueError, match="seed"):
        make_tiny("LLaDAModelLM", tmp_path, seed="0")


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_vocab_layout(arch: str):
    """BPE tokens first, then the family's added tokens in their real order, total = TINY_VOCAB."""
    spec = TOKENIZER_SPECS.get(arch)
    tok = build_tokenizer(spec, TINY_VOCAB)
    assert tok.get_vocab_size(with_added_tokens=True) == TINY_VOCAB
    added = [tok.token_to_id(content) for content, _ in spec.added]
    first = TINY_VOCAB - len(spec.added) - sum(
        t.content.startswith("<|reserved_token_") for t in tok.get_added_tokens_decoder().values()
    )
    assert added == list(range(first, first + len(spec.added)))
    assert tok.encode(SENTENCE).ids == SENTENCE_IDS


def test_reserved_tokens_fill_what_the_corpus_cannot():
    spec = TOKENIZER_SPECS.get("LLaDAModelLM")
    tok = build_tokenizer(spec, 2200)  # the built-in corpus yields at most 2059 BPE tokens
    assert tok.get_vocab_size(with_added_tokens=True) == 2200
    assert tok.id_to_token(2199) == "<|reserved_token_134|>"
    assert tok.token_to_id("<|eot_id|>") == 2064  # 2059 BPE, then the 6 LLaDA tokens
    with pytest.raises(ValueError, match="vocab_size 512"):
        build_tokenizer(spec, 512)


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_tokenizer_loads_round_trips_and_renders_chat(arch: str, tiny_dir):
    d = tiny_dir(arch)
    tok = AutoTokenizer.from_pretrained(str(d))
    spec = TOKENIZER_SPECS.get(arch)
    assert len(tok) == TINY_VOCAB
    assert tok(SENTENCE, add_special_tokens=False)["input_ids"] == SENTENCE_IDS
    text = "The quick brown fox, café ünïcode 日本 <tab>\there.\n"
    assert tok.decode(tok(text)["input_ids"]) == text
    mask_id = EXPECTED_IDS[arch][0]
    assert tok.mask_token == spec.mask and tok.mask_token_id == mask_id
    assert tok.eos_token == spec.eos and tok.pad_token == spec.pad and tok.bos_token == spec.bos
    assert tok(f"a{spec.mask}b", add_special_tokens=False)["input_ids"][1] == mask_id
    rendered = tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True)
    assert rendered == RENDERED[arch]
    ids = tok.apply_chat_template(CHAT, add_generation_prompt=True, return_dict=True)["input_ids"]
    assert ids == tok(rendered, add_special_tokens=False)["input_ids"]
    for marker, count in MARKERS[arch].items():  # role markers are single added tokens
        assert ids.count(tok.convert_tokens_to_ids(marker)) == count, marker


def test_chat_template_system_and_thinking_variants(tiny_dir):
    sys_chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    dream = AutoTokenizer.from_pretrained(str(tiny_dir("DreamModel")))
    assert dream.apply_chat_template(sys_chat, tokenize=False, add_generation_prompt=True) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    )
    llada2 = AutoTokenizer.from_pretrained(str(tiny_dir("LLaDA2MoeModelLM")))
    assert llada2.apply_chat_template(sys_chat, tokenize=False, add_generation_prompt=True) == (
        "<role>SYSTEM</role>Be brief.\ndetailed thinking off<|role_end|>"
        "<role>HUMAN</role>Hi<|role_end|><role>ASSISTANT</role>"
    )
    sdar = AutoTokenizer.from_pretrained(str(tiny_dir("SDARForCausalLM")))
    assert sdar.apply_chat_template(
        sys_chat, tokenize=False, add_generation_prompt=True, enable_thinking=False
    ) == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n" \
         "<|im_start|>assistant\n<think>\n\n</think>\n\n"


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_config_loads_without_remote_code(arch: str, tiny_dir):
    d = tiny_dir(arch)
    register_configs()
    spec = FAMILIES.get(arch)
    raw = json.loads((d / "config.json").read_text())
    assert raw["model_type"] == tiny_config_dict(arch)["model_type"]
    config = AutoConfig.from_pretrained(str(d))  # NOTE: no trust_remote_code
    if arch == "LLaDAMoEModelLM":
        # the real config.json says "llada", LLaDA-8B's type: AutoConfig alone cannot tell the
        # families apart; loaders go by `architectures` and the family's own class
        llada_config = FAMILIES.get("LLaDAModelLM").load_class("config_class")
        assert raw["model_type"] == "llada" and type(config) is llada_config
        config = spec.load_class("config_class").from_pretrained(str(d))
    assert type(config) is spec.load_class("config_class")
    assert config.architectures == [arch]
    assert raw["vocab_size"] == TINY_VOCAB and "auto_map" in raw
    assert raw.get("mask_token_id", EXPECTED_IDS[arch][0]) == EXPECTED_IDS[arch][0]


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_resolve_dir_reports_the_tiny_ids(arch: str, tiny_dir):
    resolved = resolve_dir(tiny_dir(arch))
    assert resolved.spec.architecture == arch
    assert (resolved.mask_id, resolved.eos_ids) == EXPECTED_IDS[arch]
    assert resolved.vocab_size == TINY_VOCAB


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_reference_loads_the_weights(arch: str, tiny_dir):
    d = tiny_dir(arch)
    loaded = load_reference(d)
    saved = load_file(str(d / "model.safetensors"))
    own = loaded.model.state_dict()
    assert set(saved) <= set(own)
    for name, tensor in saved.items():
        assert torch.equal(own[name], tensor), name
    ids = torch.tensor([SENTENCE_IDS])
    positions = torch.arange(ids.shape[1]).unsqueeze(0)
    with torch.no_grad():
        logits = loaded.model(ids, positions)
    assert logits.shape == (1, len(SENTENCE_IDS), TINY_VOCAB) and torch.isfinite(logits).all()
    # the same seed rebuilt in memory gives the same network, bit for bit
    fresh = FAMILIES.get(arch).load_class("reference_model")(loaded.model.config)
    fresh.init_weights(torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(fresh.eval()(ids, positions), logits)


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_tied_head_is_not_saved(arch: str, tiny_dir):
    d = tiny_dir(arch)
    raw = json.loads((d / "config.json").read_text())
    names = set(load_file(str(d / "model.safetensors")))
    model_cls = FAMILIES.get(arch).load_class("reference_model")
    if raw.get("tie_word_embeddings") or raw.get("weight_tying"):
        assert model_cls.tied_weights and not set(model_cls.tied_weights) & names
    assert (d / "model.safetensors").stat().st_size < 8 << 20


@pytest.mark.parametrize("arch", TINY_ARCHITECTURES)
def test_generation_config_carries_the_tiny_ids(arch: str, tiny_dir):
    gen = json.loads((tiny_dir(arch) / "generation_config.json").read_text())
    stops = EXPECTED_IDS[arch][1]
    eos = gen["eos_token_id"]
    assert (eos if isinstance(eos, list) else [eos])[0] == stops[0]
    assert gen["pad_token_id"] == AutoTokenizer.from_pretrained(str(tiny_dir(arch))).pad_token_id


def test_same_seed_is_byte_identical_other_seed_differs(tmp_path: Path):
    arch = "LLaDAModelLM"
    a = make_tiny(arch, tmp_path / "a", seed=3)
    b = make_tiny(arch, tmp_path / "b", seed=3)
    c = make_tiny(arch, tmp_path / "c", seed=4)
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "model.safetensors").read_bytes() != (c / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_bytes() == (c / "tokenizer.json").read_bytes()
