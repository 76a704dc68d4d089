"""Trains the tiny byte-level BPE and writes a family's tokenizer files (HF layout).

Vocabulary layout: BPE tokens, then the family's added tokens in their real order, then
`<|reserved_token_i|>` fillers, so the total is exactly the requested vocab size.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

from .corpus import CORPUS
from .specs import TokenizerSpec

MIN_BPE = 1024  # below this the trained BPE no longer splits ordinary text into real merges


def build_tokenizer(spec: TokenizerSpec, vocab_size: int) -> Tokenizer:
    """A byte-level BPE of exactly `vocab_size` tokens carrying the family's added tokens."""
    if not isinstance(vocab_size, int) or vocab_size - len(spec.added) < MIN_BPE:
        raise ValueError(
            f"vocab_size {vocab_size!r} leaves fewer than {MIN_BPE} BPE tokens next to "
            f"{len(spec.added)} added tokens"
        )
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(spec.added),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    # NOTE: one at a time, so ids follow the spec's order even where special and plain interleave.
    for content, special in spec.added:
        token = AddedToken(content, special=special, normalized=False)
        (tok.add_special_tokens if special else tok.add_tokens)([token])
    reserved = vocab_size - tok.get_vocab_size(with_added_tokens=True)
    tok.add_special_tokens(
        [AddedToken(f"<|reserved_token_{i}|>", special=True, normalized=False) for i in range(reserved)]
    )
    return tok


def token_ids(tok: Tokenizer, names: str | tuple[str, ...]) -> int | list[int]:
    """Token name (or tuple of names) -> id (or list of ids, as generation_config lists EOS)."""
    if isinstance(names, str):
        return tok.token_to_id(names)
    return [tok.token_to_id(n) for n in names]


def write_tokenizer(tok: Tokenizer, spec: TokenizerSpec, out_dir: Path, max_length: int) -> None:
    """Writes tokenizer.json, tokenizer_config.json and special_tokens_map.json.

    The config files follow the layout the real checkpoints ship (added_tokens_decoder and
    an inline chat_template), which transformers 5 still reads.
    """
    tok.save(str(out_dir / "tokenizer.json"))
    roles = {"bos_token": spec.bos, "eos_token": spec.eos, "pad_token": spec.pad, "mask_token": spec.mask}
    roles = {k: v for k, v in roles.items() if v is not None}
    decoder = {
        str(i): {
            "content": t.content, "lstrip": t.lstrip, "normalized": t.normalized,
            "rstrip": t.rstrip, "single_word": t.single_word, "special": t.special,
        }
        for i, t in sorted(tok.get_added_tokens_decoder().items())
    }
    config = {
        "add_bos_token": False,
        "add_eos_token": False,
        "added_tokens_decoder": decoder,
        **roles,
        "chat_template": spec.chat_template,
        "clean_up_tokenization_spaces": False,
        "model_max_length": max_length,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }
    _write_json(out_dir / "tokenizer_config.json", config)
    special_map = {
        k: {"content": v, "lstrip": False, "normalized": False, "rstrip": False, "single_word": False}
        for k, v in roles.items()
    }
    _write_json(out_dir / "special_tokens_map.json", special_map)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
