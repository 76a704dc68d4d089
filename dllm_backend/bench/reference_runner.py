"""Runs a sweep point over an eval set with the reference generators (dLLMs) or greedy AR decoding.

One request at a time (the reference generators are batch-1; concurrency > 1 is refused).
Each request becomes a `RequestRecord`: wall times on `time.perf_counter`, forwards and steps
from the generator, exact match of the decoded reply against the example's answer.

Time to first committed token: a forward hook stamps the end of every model forward; the
first token is committed by the denoising step that follows the first forward that is not
a prefill (`FIRST_COMMIT_FORWARD`, from each generator's forward order; the policy step
itself is not timed separately).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from transformers import PreTrainedTokenizerFast

from ..core.families import FAMILIES
from ..core.reference.generators import GenerationRequest, GenerationResult, generate
from ..core.registry import Registry
from ..train.ar_twin import greedy_generate, load_ar_twin
from ..train.checkpoint import AR_ARCHITECTURE, checkpoint_architecture
from ..train.data import prompt_ids
from ..train.tasks import Example, exact_match
from .records import RequestRecord
from .sweep import GREEDY, SweepPoint

# generator -> (prompt_len, block) -> index of the forward whose logits commit the first token
FIRST_COMMIT_FORWARD: Registry[Callable[[int, int], int]] = Registry("generator forward order")
FIRST_COMMIT_FORWARD.add("full_attention", lambda p, b: 0)
FIRST_COMMIT_FORWARD.add("block_diffusion", lambda p, b: 1 if p >= b else 0)  # after the prefill
# Fast-dLLM v2: a whole-block prompt's prefill already yields the first (AR) token
FIRST_COMMIT_FORWARD.add("fast_dllm_v2", lambda p, b: 0 if p % b == 0 or p < b else 1)
FIRST_COMMIT_FORWARD.add(GREEDY, lambda p, b: 0)


@dataclass
class _Model:
    """A loaded checkpoint and how to decode with it."""

    architecture: str
    generator: str
    net: object  # the reference network (forward hooks go here)
    decode: Callable[[tuple[int, ...], SweepPoint, int], GenerationResult]
    block_size: int


def load(model_dir: str | Path, device: str = "cpu") -> _Model:
    """The checkpoint's reference network on `device` and its decoding function."""
    d = Path(model_dir)
    arch = checkpoint_architecture(d)
    if arch == AR_ARCHITECTURE:
        ar = load_ar_twin(d, device=device)

        def decode_ar(prompt: tuple[int, ...], point: SweepPoint, max_tokens: int) -> GenerationResult:
            if point.algorithm != GREEDY:
                raise ValueError(f"{arch} is autoregressive: only {GREEDY!r} applies, got {point.algorithm!r}")
            return greedy_generate(ar, prompt, max_tokens)

        return _Model(arch, GREEDY, ar.model, decode_ar, 1)
    if arch not in FAMILIES:
        raise ValueError(f"unknown architecture {arch!r}; valid: {AR_ARCHITECTURE}, {', '.join(FAMILIES.names())}")
    from ..core.reference.loading import load_reference

    loaded = load_reference(d, device=device)

    def decode_dllm(prompt: tuple[int, ...], point: SweepPoint, max_tokens: int) -> GenerationResult:
        request = GenerationRequest(
            prompt_ids=prompt, max_tokens=max_tokens, decode=point.decode_config(),
            block_size=point.block_size, cache_mode=point.cache_mode,  # type: ignore[arg-type]
        )
        return generate(loaded, request)

    return _Model(arch, loaded.family.spec.generator, loaded.model, decode_dllm, loaded.family.block_size)


def run_point(
    model_dir: str | Path,
    examples: Sequence[Example],
    point: SweepPoint,
    max_tokens: int,
    model: _Model | None = None,
) -> list[RequestRecord]:
    """Decodes every example with `point`; returns one record per example, in order."""
    if point.concurrency != 1:
        raise ValueError(f"the reference runner decodes one request at a time; got concurrency {point.concurrency}")
    m = model or load(model_dir)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(model_dir))
    stamps: list[float] = []
    handle = m.net.register_forward_hook(lambda *_: stamps.append(time.perf_counter()))  # type: ignore[attr-defined]
    records = []
    try:
        for i, ex in enumerate(examples):
            prompt = tuple(prompt_ids(tokenizer, ex.prompt))
            block = point.block_size or m.block_size
            stamps.clear()
            start = time.perf_counter()
            result = m.decode(prompt, point, max_tokens)
            end = time.perf_counter()
            k = FIRST_COMMIT_FORWARD.get(m.generator)(len(prompt), max(block, 1))
            first = stamps[k] if k < len(stamps) and result.token_ids else None
            text = tokenizer.decode(result.token_ids, skip_special_tokens=True)
            records.append(RequestRecord(
                request_id=f"{i}", prompt_tokens=len(prompt), output_tokens=len(result.token_ids),
                start_s=start, first_token_s=first, end_s=end, nfe=result.nfe, steps=result.steps,
                correct=exact_match(text, ex.answer), finish_reason=result.finish_reason,
                output_ids=tuple(result.token_ids),
            ))
    finally:
        handle.remove()
    return records


class ReferenceRunner:
    """The `run_point(examples, point, max_tokens)` interface the suite drives (see `vllm_runner.VllmRunner`)."""

    def __init__(self, model_dir: str | Path) -> None:
        self.model_dir = Path(model_dir)
        self.model = load(model_dir)

    def warm_up(self, examples: Sequence[Example], point: SweepPoint, max_tokens: int) -> None:
        self.run_point(examples[: min(len(examples), 2)], point, max_tokens)

    def run_point(self, examples: Sequence[Example], point: SweepPoint, max_tokens: int) -> list[RequestRecord]:
        return run_point(self.model_dir, examples, point, max_tokens, self.model)

    def close(self) -> None:
        self.model = None  # type: ignore[assignment]
