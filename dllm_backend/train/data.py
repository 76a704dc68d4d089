"""Turns chat examples into token rows for the three objectives.

A row is prompt (the user turn rendered by the checkpoint's own chat template, with the
generation prompt) + answer tokens + the template's end-of-turn token, then pad tokens:
- full-attention dLLM: the answer region is exactly `gen_length` long (the eval canvas), as
  LLaDA's SFT pads answers with EOS that the model learns to predict;
- block diffusion: padded to whole blocks (blocks are aligned to position 0);
- autoregressive: no pad inside the row.
Rows of a batch are right-padded to one length; for dLLMs those pads are answer positions too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .recipes import Recipe
from .tasks import Example


def prompt_ids(tokenizer, user_text: str) -> list[int]:
    """The user turn through the checkpoint's chat template, ready for the assistant's reply."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": user_text}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@dataclass(frozen=True)
class Encoded:
    prompt: tuple[int, ...]
    answer: tuple[int, ...]  # answer tokens + end-of-turn (+ pads for dLLMs)


def encode(example: Example, tokenizer, recipe: Recipe) -> Encoded:
    """The definition: the chat template and the tokenizer on every example (slow, ~0.2 ms)."""
    prompt = prompt_ids(tokenizer, example.prompt)
    answer = tokenizer(example.answer, add_special_tokens=False)["input_ids"]
    return _finish(prompt, answer, _end_and_pad(tokenizer, recipe), recipe)


def _end_and_pad(tokenizer, recipe: Recipe) -> tuple[int, int]:
    return tokenizer.convert_tokens_to_ids(recipe.end_token), tokenizer.convert_tokens_to_ids(recipe.pad_token)


def _finish(prompt: Sequence[int], answer: Sequence[int], end_pad: tuple[int, int], recipe: Recipe) -> Encoded:
    """Appends the end-of-turn token and the recipe's pads to the answer ids."""
    end, pad = end_pad
    answer = [*answer, end]
    if recipe.objective == "masked_diffusion":
        if len(answer) > recipe.gen_length:
            raise ValueError(f"answer of {len(answer)} tokens exceeds gen_length {recipe.gen_length}")
        answer += [pad] * (recipe.gen_length - len(answer))
    elif recipe.objective == "block_diffusion":
        total = len(prompt) + len(answer)
        answer += [pad] * (-total % recipe.block_size)
    return Encoded(tuple(prompt), tuple(answer))


_SENTINEL = "\x00user-text\x00"


class RowEncoder:
    """`encode` at a few microseconds per example, for the trainer's data stream.

    The chat template is rendered once around a sentinel, and texts are tokenized word by
    word (split at single spaces, the space joining the next word) through a memo. That is
    exact for tokenizers that pre-split at those points and at special tokens, as the tiny
    byte-level BPEs do on the digit tasks; `check` compares a row with `encode`, and the
    trainer runs it on the first row of every chunk of examples.
    """

    def __init__(self, tokenizer, recipe: Recipe) -> None:
        self.tokenizer, self.recipe = tokenizer, recipe
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": _SENTINEL}], tokenize=False, add_generation_prompt=True
        )
        head, found, tail = text.partition(_SENTINEL)
        if not found:
            raise ValueError("the chat template does not insert the user text verbatim")
        self._head, self._tail = self._ids(head), self._ids(tail)
        self._end_pad = _end_and_pad(tokenizer, recipe)
        self._words: dict[str, list[int]] = {}

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _text(self, text: str) -> list[int]:
        first, *rest = text.split(" ")
        out = list(self._word(first))
        for word in rest:
            out += self._word(" " + word)
        return out

    def _word(self, word: str) -> list[int]:
        ids = self._words.get(word)
        if ids is None:
            ids = self._words[word] = self._ids(word)
        return ids

    def __call__(self, example: Example) -> Encoded:
        prompt = self._head + self._text(example.prompt) + self._tail
        return _finish(prompt, self._text(example.answer), self._end_pad, self.recipe)

    def check(self, example: Example) -> Encoded:
        """Encodes `example` both ways; RuntimeError if they differ."""
        fast, slow = self(example), encode(example, self.tokenizer, self.recipe)
        if fast != slow:
            raise RuntimeError(f"RowEncoder differs from encode on {example.prompt!r}: {fast} != {slow}")
        return fast


@dataclass
class Batch:
    """ids [R, L] long; answer [R, L] bool: positions that are noised / scored (the prompt
    never is); for the AR objective, positions past a row's end are False."""

    ids: torch.Tensor
    answer: torch.Tensor


def collate(rows: Sequence[Encoded], pad_id: int, multiple: int = 1, pads_are_answer: bool = True) -> Batch:
    length = max(len(r.prompt) + len(r.answer) for r in rows)
    length = -(-length // multiple) * multiple
    ids = torch.tensor(
        [r.prompt + r.answer + (pad_id,) * (length - len(r.prompt) - len(r.answer)) for r in rows], dtype=torch.long
    )  # [R, L]
    start = torch.tensor([len(r.prompt) for r in rows])  # [R]
    end = torch.full_like(start, length) if pads_are_answer else start + torch.tensor([len(r.answer) for r in rows])
    pos = torch.arange(length)[None]  # [1, L]
    return Batch(ids=ids, answer=(pos >= start[:, None]) & (pos < end[:, None]))
