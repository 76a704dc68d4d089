"""`train_tiny(kind, out_dir, seed, minutes)`: trains one recipe on CPU and writes its checkpoint.

Deterministic for a given (kind, seed, steps) on one machine: data, masks and init all come
from seeded generators. `minutes` only caps the wall clock (training then stops early and
the report says so); the learning-rate schedule is always laid out over `steps`.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import torch

from .checkpoint import build_network, save_weights, write_config_and_tokenizer
from .data import collate, encode
from .objectives import OBJECTIVES
from .recipes import RECIPES, Recipe
from .tasks import examples

HELDOUT_SEED = 0
HELDOUT_SIZE = 256
_CHUNK = 100  # steps of examples drawn at a time; weights (and state) are saved at its multiples


@dataclass(frozen=True)
class TrainReport:
    kind: str
    out_dir: Path
    seed: int
    steps_planned: int
    steps_done: int
    seconds: float
    final_loss: float  # mean loss over the last 50 steps
    num_parameters: int


def heldout_examples(recipe: Recipe):
    return examples(HELDOUT_SIZE, HELDOUT_SEED, "heldout", recipe.tasks)


def _lr_at(step: int, recipe: Recipe) -> float:
    """Linear warmup over `recipe.warmup_steps`, then cosine decay to 10% at `recipe.steps`.

    NOTE: the decay is laid out over the planned steps, so a run cut short by `minutes` is
    not the same as a shorter planned run; reproduce a checkpoint with its `steps`.
    """
    if step < recipe.warmup_steps:
        return recipe.lr * (step + 1) / recipe.warmup_steps
    done = (step - recipe.warmup_steps) / max(1, recipe.steps - recipe.warmup_steps)
    return recipe.lr * (0.1 + 0.45 * (1.0 + math.cos(math.pi * min(1.0, done))))


def _batches(recipe: Recipe, tokenizer, seed: int, first: int, steps: int) -> Iterator:
    """Batches of steps [first, steps); step i's batch depends only on (seed, i)."""
    exclude = {e.prompt for e in heldout_examples(recipe)}
    pad = tokenizer.convert_tokens_to_ids(recipe.pad_token)
    multiple = recipe.block_size if recipe.objective == "block_diffusion" else 1
    for start in range(first - first % _CHUNK, steps, _CHUNK):
        n = min(_CHUNK, steps - start)
        # NOTE: `examples` is prefix-stable, so a shorter last chunk is a prefix of the full one
        pool = examples(n * recipe.batch_size, seed * 100_000 + start, "train", recipe.tasks, exclude)
        for i in range(max(first - start, 0), n):
            part = pool[i * recipe.batch_size : (i + 1) * recipe.batch_size]
            rows = [encode(e, tokenizer, recipe) for e in part]
            yield collate(rows, pad, multiple, pads_are_answer=recipe.objective != "autoregressive")


def _optimizer(model: torch.nn.Module, recipe: Recipe) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr, betas=(0.9, 0.98),
    )


def _save_state(path: Path, kind: str, seed: int, step: int, model, opt, gen: torch.Generator) -> None:
    state = {"kind": kind, "seed": seed, "step": step, "model": model.state_dict(),
             "opt": opt.state_dict(), "gen": gen.get_state()}
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)  # never leave a half-written state behind


def _resume(path: Path | None, kind: str, seed: int, model, opt, gen: torch.Generator) -> int:
    """Restores a saved training state; returns the step to continue from (0 if none)."""
    if path is None or not path.is_file():
        return 0
    state = torch.load(path, weights_only=False)
    if (state["kind"], state["seed"]) != (kind, seed):
        raise ValueError(f"{str(path)!r} holds a {state['kind']!r} run with seed {state['seed']}, "
                         f"not {kind!r} with seed {seed}")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    gen.set_state(state["gen"])
    return int(state["step"])


def train_tiny(
    kind: str,
    out_dir: str | Path,
    seed: int = 0,
    minutes: float | None = None,
    steps: int | None = None,
    threads: int = 2,
    state_path: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> TrainReport:
    """Trains recipe `kind` ('llada' | 'sdar' | 'ar') and writes the checkpoint to `out_dir`.

    Every `_CHUNK` steps the weights are written (a usable checkpoint if the run is cut
    short) and, with `state_path`, the whole training state, from which a later call with
    the same kind and seed continues exactly where it stopped.
    """
    recipe = RECIPES.get(kind)
    if steps is not None:
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        recipe = replace(recipe, steps=steps)
    if minutes is not None and not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes!r}")
    torch.set_num_threads(threads)
    out = Path(out_dir)
    state = Path(state_path) if state_path is not None else None
    config, tokenizer = write_config_and_tokenizer(recipe, out)
    model = build_network(recipe, config, seed)
    model.train()
    mask_id = getattr(config, "mask_token_id", None) or 0  # the AR objective never masks
    objective = OBJECTIVES.get(recipe.objective)
    opt = _optimizer(model, recipe)
    gen = torch.Generator().manual_seed(seed)
    first = _resume(state, kind, seed, model, opt, gen)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"[{kind}] {recipe.architecture}: {n_params / 1e6:.2f}M parameters, steps {first}..{recipe.steps}")
    start, losses, done = time.monotonic(), [], first
    for step, batch in enumerate(_batches(recipe, tokenizer, seed, first, recipe.steps), start=first):
        if minutes is not None and time.monotonic() - start > 60 * minutes:
            log(f"[{kind}] stopping at step {step}: the {minutes} minute cap is reached")
            break
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, recipe)
        loss = objective(model, batch, mask_id, recipe.block_size, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        done = step + 1
        if done % 50 == 0 or done == recipe.steps:
            recent = losses[-50:]
            log(f"[{kind}] step {done}/{recipe.steps} loss {sum(recent) / len(recent):.4f} "
                f"({time.monotonic() - start:.0f}s)")
        if done % _CHUNK == 0:
            save_weights(model, out / "model.safetensors")
            if state is not None:
                _save_state(state, kind, seed, done, model, opt, gen)
    model.eval()
    save_weights(model, out / "model.safetensors")
    recent = losses[-50:] or [float("nan")]
    return TrainReport(
        kind=kind, out_dir=out, seed=seed, steps_planned=recipe.steps, steps_done=done,
        seconds=time.monotonic() - start, final_loss=sum(recent) / len(recent), num_parameters=n_params,
    )
