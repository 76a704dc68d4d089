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
    prompt = prompt_ids(tokenizer, example.prompt)
    answer = tokenizer(example.answer, add_special_tokens=False)["input_ids"]
    answer.append(tokenizer.convert_tokens_to_ids(recipe.end_token))
    pad = tokenizer.convert_tokens_to_ids(recipe.pad_token)
    if recipe.objective == "masked_diffusion":
        if len(answer) > recipe.gen_length:
            raise ValueError(f"answer of {len(answer)} tokens exceeds gen_length {recipe.gen_length}")
        answer += [pad] * (recipe.gen_length - len(answer))
    elif recipe.objective == "block_diffusion":
        total = len(prompt) + len(answer)
        answer += [pad] * (-total % recipe.block_size)
    return Encoded(tuple(prompt), tuple(answer))


@dataclass
class Batch:
    """ids [R, L] long; answer [R, L] bool: positions that are noised / scored (the prompt
    never is); for the AR objective, positions past a row's end are False."""

    ids: torch.Tensor
    answer: torch.Tensor


def collate(rows: Sequence[Encoded], pad_id: int, multiple: int = 1, pads_are_answer: bool = True) -> Batch:
    length = max(len(r.prompt) + len(r.answer) for r in rows)
    length = -(-length // multiple) * multiple
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    answer = torch.zeros((len(rows), length), dtype=torch.bool)
    for i, r in enumerate(rows):
        p, a = len(r.prompt), len(r.answer)
        ids[i, :p] = torch.tensor(r.prompt)
        ids[i, p : p + a] = torch.tensor(r.answer)
        answer[i, p : length if pads_are_answer else p + a] = True
    return Batch(ids=ids, answer=answer)
