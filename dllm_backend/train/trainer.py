"""`train_tiny(kind, out_dir, seed, minutes)`: trains one recipe and writes its checkpoint.

Deterministic for a given (kind, seed, steps, overrides) on one machine and device type:
data, masks and init all come from seeded CPU generators, so a CUDA run (`device="cuda"`:
model and optimizer on the GPU) sees exactly the CPU run's data and noise; its float sums
differ (GPU kernels, atomics), so its weights do too. `minutes` only caps the wall clock
(training then stops early and the report says so); the learning-rate schedule is always
laid out over `steps`.
"""
from __future__ import annotations

import math
import time
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch

from .checkpoint import build_network, save_weights, write_config_and_tokenizer
from .data import RowEncoder, collate
from .objectives import OBJECTIVES
from .prefetch import prefetched
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
    device: str
    batch_size: int
    lr: float
    seconds_per_step: float  # after the first step (which waits for the first batch); nan if none


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
    pads_are_answer = recipe.objective != "autoregressive"
    encode = RowEncoder(tokenizer, recipe)
    for start in range(first - first % _CHUNK, steps, _CHUNK):
        n = min(_CHUNK, steps - start)
        # NOTE: `examples` is prefix-stable, so a shorter last chunk is a prefix of the full one
        pool = examples(n * recipe.batch_size, seed * 100_000 + start, "train", recipe.tasks, exclude)
        encode.check(pool[0])  # the fast encoder's guard: equal to the template + tokenizer path
        for i in range(max(first - start, 0), n):
            part = pool[i * recipe.batch_size : (i + 1) * recipe.batch_size]
            yield collate([encode(e) for e in part], pad, multiple, pads_are_answer)


def _stream(kind: str, changes: Mapping[str, Any], tokenizer_dir: str, seed: int, first: int, steps: int) -> Iterator:
    """`_batches` from picklable arguments (what the prefetching child process runs)."""
    from transformers import PreTrainedTokenizerFast

    recipe = resolve_recipe(kind, changes)
    yield from _batches(recipe, PreTrainedTokenizerFast.from_pretrained(tokenizer_dir), seed, first, steps)


def _optimizer(model: torch.nn.Module, recipe: Recipe, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    # NOTE: fused on CUDA: a few kernel launches instead of a few per tensor (the tiny model is
    # launch-bound there); the CPU keeps its default implementation, so its weights are unchanged
    fused = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": recipe.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=recipe.lr, betas=(0.9, 0.98), **fused,
    )


def _run_id(recipe: Recipe, seed: int) -> dict[str, Any]:
    """What a saved state must match to be resumed: the recipe's name, seed and batch / lr overrides."""
    return {"kind": recipe.kind, "seed": seed, "batch_size": recipe.batch_size, "lr": recipe.lr,
            "warmup_steps": recipe.warmup_steps}


def _save_state(path: Path, run: dict[str, Any], step: int, model, opt, gen: torch.Generator) -> None:
    state = {**run, "step": step, "model": model.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state()}
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)  # never leave a half-written state behind


def _resume(path: Path | None, run: dict[str, Any], model, opt, gen: torch.Generator) -> int:
    """Restores a saved training state; returns the step to continue from (0 if none)."""
    if path is None or not path.is_file():
        return 0
    state = torch.load(path, weights_only=False, map_location="cpu")
    saved = {k: state.get(k) for k in run}
    if saved != run:
        raise ValueError(f"{str(path)!r} holds the run {saved}, not {run}")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["opt"])
    gen.set_state(state["gen"])
    return int(state["step"])


# recipe fields a run may change (`train-tiny --steps/--batch-size/--lr/--warmup-steps`)
OVERRIDABLE = ("steps", "batch_size", "lr", "warmup_steps")


def resolve_recipe(kind: str, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Recipe `kind` with `overrides` (`OVERRIDABLE` fields) applied, validated by `Recipe`."""
    unknown = sorted(set(overrides or {}) - set(OVERRIDABLE))
    if unknown:
        raise ValueError(f"cannot override recipe fields {unknown}; valid: {', '.join(OVERRIDABLE)}")
    return replace(RECIPES.get(kind), **(overrides or {}))


def resolve_device(device: str | torch.device) -> torch.device:
    """`cpu` or `cuda[:i]`; ValueError naming the device when it is neither or CUDA is absent."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(f"device {device!r} is not a torch device: {e}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device {device!r}: training runs on 'cpu' or 'cuda'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine")
    return dev


def train_tiny(
    kind: str,
    out_dir: str | Path,
    seed: int = 0,
    minutes: float | None = None,
    steps: int | None = None,
    threads: int = 2,
    state_path: str | Path | None = None,
    log: Callable[[str], None] = print,
    device: str | torch.device = "cpu",
    overrides: Mapping[str, Any] | None = None,
) -> TrainReport:
    """Trains recipe `kind` (a `RECIPES` name, with `OVERRIDABLE` fields changed by `steps` /
    `overrides`) on `device` and writes the checkpoint to `out_dir`.

    Every `_CHUNK` steps the weights are written (a usable checkpoint if the run is cut
    short) and, with `state_path`, the whole training state, from which a later call with
    the same kind, seed and overrides continues exactly where it stopped.
    """
    changes = {**(overrides or {}), **({} if steps is None else {"steps": steps})}
    recipe = resolve_recipe(kind, changes)
    if minutes is not None and not minutes > 0:
        raise ValueError(f"minutes must be positive, got {minutes!r}")
    dev = resolve_device(device)
    torch.set_num_threads(threads)
    out = Path(out_dir)
    run = _Run(recipe, seed, dev, out, Path(state_path) if state_path is not None else None, log)
    if dev.type == "cuda":  # a GPU step costs about what making a batch does: make them in parallel
        batches = prefetched(_stream, kind, changes, str(out), seed, run.first, recipe.steps)
    else:
        batches = _batches(recipe, run.tokenizer, seed, run.first, recipe.steps)
    start = time.monotonic()
    with closing(batches):
        done, losses, per_step = run.train(batches, None if minutes is None else start + 60 * minutes)
    run.model.eval()
    save_weights(run.model, out / "model.safetensors")
    recent = losses[-50:] or [float("nan")]
    return TrainReport(
        kind=kind, out_dir=out, seed=seed, steps_planned=recipe.steps, steps_done=done,
        seconds=time.monotonic() - start, final_loss=sum(recent) / len(recent),
        num_parameters=run.num_parameters, device=str(dev), batch_size=recipe.batch_size, lr=recipe.lr,
        seconds_per_step=per_step,
    )


class _Run:
    """One training run's checkpoint files, network, optimizer and noise generator."""

    def __init__(self, recipe: Recipe, seed: int, dev: torch.device, out: Path, state: Path | None, log) -> None:
        self.recipe, self.out, self.state, self.log = recipe, out, state, log
        config, self.tokenizer = write_config_and_tokenizer(recipe, out)
        self.model = build_network(recipe, config, seed).to(dev)  # initialised on the CPU: equal on every device
        self.model.train()
        self.mask_id = getattr(config, "mask_token_id", None) or 0  # the AR objective never masks
        self.objective = OBJECTIVES.get(recipe.objective)
        self.opt = _optimizer(self.model, recipe, dev)
        self.gen = torch.Generator().manual_seed(seed)
        self.run_id = _run_id(recipe, seed)
        self.first = _resume(state, self.run_id, self.model, self.opt, self.gen)
        self.num_parameters = sum(p.numel() for p in self.model.parameters())
        log(f"[{recipe.kind}] {recipe.architecture}: {self.num_parameters / 1e6:.2f}M parameters, "
            f"steps {self.first}..{recipe.steps} on {dev}")

    def train(self, batches: Iterator, deadline: float | None) -> tuple[int, list[float], float]:
        """Steps from `self.first` until the batches or the wall-clock `deadline` run out;
        returns (steps done, losses, seconds per step after the first)."""
        recipe, model, opt, kind = self.recipe, self.model, self.opt, self.recipe.kind
        start, losses, done, after_first = time.monotonic(), [], self.first, None
        for step, batch in enumerate(batches, start=self.first):
            if deadline is not None and time.monotonic() > deadline:
                self.log(f"[{kind}] stopping at step {step}: the minute cap is reached")
                break
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, recipe)
            loss = self.objective(model, batch, self.mask_id, recipe.block_size, self.gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            losses.append(loss.item())
            done = step + 1
            after_first = after_first or (time.monotonic(), done)
            if done % 50 == 0 or done == recipe.steps:
                recent = losses[-50:]
                self.log(f"[{kind}] step {done}/{recipe.steps} loss {sum(recent) / len(recent):.4f} "
                         f"({time.monotonic() - start:.0f}s)")
            if done % _CHUNK == 0:
                save_weights(model, self.out / "model.safetensors")
                if self.state is not None:
                    _save_state(self.state, self.run_id, done, model, opt, self.gen)
        if after_first is None or done == after_first[1]:
            return done, losses, float("nan")
        return done, losses, (time.monotonic() - after_first[0]) / (done - after_first[1])
