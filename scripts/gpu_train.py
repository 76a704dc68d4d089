#!/usr/bin/env python3
"""Trains tiny-model variants side by side on one GPU, scores each on the held-out set and
packs the best checkpoint of each group (issue 10 item 5: a LLaDA within a point of the AR
twin, a block-diffusion model with a wider block).

    PYTHONPATH=$PWD python3 scripts/gpu_train.py --out "$OUT"                   # GPU run, < 5 min
    PYTHONPATH=$PWD python3 scripts/gpu_train.py --out /tmp/smoke --device cpu \\
        --budget-s 40 --variants llada-b64,sdar16-b128 --max-batch 4 --probe-steps 3 \\
        --max-steps 6 --eval-limit 6 --eval-reserve-s 12                        # CPU smoke test

Why processes: the 0.84M-parameter models are launch-bound on a GPU (a step is a few hundred
tiny kernels), so one Python process cannot keep it busy; each variant runs in its own worker
(this script with --worker), and its batches are made by one more process (the trainer's
prefetching on CUDA). A worker
1. times a short probe run (`--probe-steps`) under the others' load;
2. plans as many steps as fit before the training deadline (`--budget-s` minus
   `--eval-reserve-s`) and trains them, the trainer's minute cap as a backstop;
3. scores the checkpoint on the held-out examples with the CPU reference generator (the
   figure checkpoints/README.md reports), then decodes the first `--device-check` examples
   again on the training device and counts the token-identical answers,
writing results/<variant>.json in the work folder after each phase. This parent merges
those into summary.json as they come (a failed or killed worker loses only its own row),
stops the workers still running at the budget and packs the best checkpoint of each group.

Outputs in --out: summary.json, <group>.tar.gz per group (a `checkpoints/`-ready directory
inside), logs.tar.gz (every worker's log).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HELDOUT = REPO / "checkpoints" / "heldout.jsonl"
SAFETY = 0.8  # share of the measured pace the plan counts on (the probe ran under lighter load)
PACK_RESERVE_S = 6.0  # kept at the end of the budget for stopping workers and packing
# the committed checkpoint whose tokenizer files a variant's must equal (same tokenizer spec)
TOKENIZER_TWIN = {"llada": "llada-tiny-digits", "sdar8": "sdar-tiny-digits", "sdar16": "sdar-tiny-digits"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")


@dataclass(frozen=True)
class Variant:
    recipe: str  # a `RECIPES` name
    batch_size: int
    lr: float
    group: str  # the tarball it competes for
    checkpoint: str  # its directory name in the tarball (checkpoints/<name>/)


# On the CPU, steps looked to matter more than examples: the committed LLaDA (3,600 steps of
# 32) continued for 400 steps of 32 at lr 5e-4 solved `reverse` (74.7% -> 100%), 100 steps of
# 128 at lr 1e-3 (the same examples; the lr differed too) did not (78.3%). On a GPU a step costs about the same at any
# of these batches (launch-bound), so the LLaDA variants trade batch for pace: `llada-b32` is
# the committed recipe's data stream, only longer. The block-diffusion pair differs only in
# the block.
VARIANTS: dict[str, Variant] = {
    "llada-b32": Variant("llada", 32, 2e-3, "llada", "llada-tiny-digits"),
    "llada-b64": Variant("llada", 64, 2e-3, "llada", "llada-tiny-digits"),
    "llada-b128": Variant("llada", 128, 2e-3, "llada", "llada-tiny-digits"),
    "llada-b256-lr3e-3": Variant("llada", 256, 3e-3, "llada", "llada-tiny-digits"),
    "sdar8-b128": Variant("sdar8", 128, 2e-3, "sdar-wide", "sdar8-tiny-digits"),
    "sdar16-b128": Variant("sdar16", 128, 2e-3, "sdar-wide", "sdar16-tiny-digits"),
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for summary.json and the tarballs")
    p.add_argument("--work", default=None, help="scratch folder for checkpoints and logs (default: a temp folder)")
    p.add_argument("--device", default="cuda", help="training device: cuda | cpu")
    p.add_argument("--eval-device", default="cpu", help="device of the held-out scoring (the reference figure is CPU)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated, from: {', '.join(VARIANTS)}")
    p.add_argument("--budget-s", type=float, default=270.0, help="wall-clock budget of the whole run")
    p.add_argument("--eval-reserve-s", type=float, default=60.0, help="end of the budget kept for scoring")
    p.add_argument("--probe-steps", type=int, default=150)
    p.add_argument("--max-steps", type=int, default=100_000)
    p.add_argument("--max-batch", type=int, default=None, help="cap on every variant's batch (smoke runs)")
    p.add_argument("--eval-limit", type=int, default=None, help="score the first N held-out examples only")
    p.add_argument("--device-check", type=int, default=32, help="held-out examples decoded again on --device")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    return p


# ---- worker: one variant ---------------------------------------------------------------

class _Results:
    """A worker's results/<variant>.json, rewritten (atomically) after every phase."""

    def __init__(self, path: Path, **fields) -> None:
        self.path, self.data = path, dict(fields)

    def update(self, **fields) -> None:
        self.data.update(fields)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def _throttled_log(name: str, every_s: float = 10.0):
    last = [0.0]

    def log(line: str) -> None:  # step lines at most every `every_s`, the rest always
        now = time.monotonic()
        if " step " not in line or now - last[0] >= every_s:
            last[0] = now
            print(f"[{name}] {line}", flush=True)

    return log


def _plan_steps(args, probe, train_deadline: float) -> int:
    """As many steps as fit before the deadline at the probe's pace (the minute cap backs it up)."""
    pace = probe.seconds_per_step
    if not math.isfinite(pace) or pace <= 0:  # a one-step probe has no pace after its first step
        pace = probe.seconds / max(probe.steps_done, 1)
    return min(args.max_steps, max(1, int(SAFETY * (train_deadline - time.time()) / pace)))


def _train(args, name: str, v: Variant, work: Path, res: _Results):
    from dllm_backend.train.recipes import RECIPES
    from dllm_backend.train.trainer import train_tiny

    import torch

    batch = min(v.batch_size, args.max_batch or v.batch_size)
    knobs = {"batch_size": batch, "lr": v.lr}
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") and torch.cuda.is_available() else None
    res.update(status="probing", recipe=v.recipe, group=v.group, batch_size=batch, lr=v.lr,
               block_size=RECIPES.get(v.recipe).block_size, device=args.device, gpu=gpu, torch=torch.__version__)
    common = dict(seed=args.seed, threads=1, device=args.device, overrides=knobs, log=_throttled_log(name))
    probe = train_tiny(v.recipe, work / "probe" / name, steps=args.probe_steps, **common)
    train_deadline = args.deadline - args.eval_reserve_s
    steps = _plan_steps(args, probe, train_deadline)
    res.update(status="training", probe_s_per_step=probe.seconds_per_step, steps_planned=steps)
    minutes = max(train_deadline - time.time(), 1.0) / 60
    report = train_tiny(v.recipe, work / "ckpt" / name, steps=steps, minutes=minutes, **common)
    res.update(
        status="trained", steps_done=report.steps_done, seconds=round(report.seconds, 1),
        s_per_step=report.seconds_per_step, final_loss=report.final_loss,
        reproduce=(f"python -m dllm_backend.bench.cli train-tiny {v.recipe} checkpoints/{v.checkpoint} "
                   f"--seed {args.seed} --steps {steps} --batch-size {batch} --lr {v.lr} "
                   f"--device {args.device} --threads 1"),
        tokenizer_as_committed=_same_tokenizer(work / "ckpt" / name, v.recipe),
    )
    return report


def _same_tokenizer(ckpt: Path, recipe: str) -> bool:
    """True if the run built byte-identical tokenizer files to the committed twin's (the tiny
    BPE is trained at build time: another `tokenizers` version could build another)."""
    twin = REPO / "checkpoints" / TOKENIZER_TWIN[recipe]
    return all((ckpt / f).read_bytes() == (twin / f).read_bytes() for f in TOKENIZER_FILES)


def _score(args, ckpt: Path, res: _Results) -> None:
    import torch

    from dllm_backend.train.evaluate import evaluate
    from dllm_backend.train.tasks import load_examples

    examples = load_examples(HELDOUT, args.eval_limit)
    # NOTE: one thread: the tiny batch-1 forwards gain nothing from more, and with every core
    # busy (other workers, their batch producers) OpenMP's spinning threads slow them 10x
    torch.set_num_threads(1)
    start = time.monotonic()
    ev = evaluate(ckpt, examples, device=args.eval_device)
    res.update(status="scored", accuracy={"all": ev.summary.accuracy, **ev.per_task},
               eval_examples=len(examples), eval_device=args.eval_device,
               eval_seconds=round(time.monotonic() - start, 1))
    n = min(args.device_check, len(examples))
    if n and args.device != args.eval_device and args.deadline - time.time() > 15:
        try:  # a diagnostic: its failure must not cost the variant its score
            check = evaluate(ckpt, examples[:n], device=args.device)
            same = sum(a.output_ids == b.output_ids for a, b in zip(check.records, ev.records))
            res.update(device_check=f"{same}/{n} token-identical on {args.device}")
        except Exception as e:
            res.update(device_check=f"failed: {type(e).__name__}: {e}")


def worker(args) -> int:
    name, v = args.worker, VARIANTS[args.worker]
    work = Path(args.work)
    res = _Results(work / "results" / f"{name}.json", variant=name, status="starting")
    try:
        _train(args, name, v, work, res)
        _score(args, work / "ckpt" / name, res)
        res.update(status="done")
    except Exception as e:
        res.update(status="failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-3000:])
        print(traceback.format_exc(), flush=True)
        return 1
    return 0


# ---- parent: launch, watch, pack --------------------------------------------------------

def _launch(args, name: str, work: Path, deadline: float) -> subprocess.Popen:
    argv = [sys.executable, "-u", str(Path(__file__).resolve()), "--worker", name, "--deadline", str(deadline),
            "--work", str(work)]
    for flag in ("out", "device", "eval_device", "budget_s", "eval_reserve_s", "probe_steps", "max_steps",
                 "max_batch", "eval_limit", "device_check", "seed"):
        value = getattr(args, flag)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    log = open(work / "logs" / f"{name}.log", "w")
    # a session of its own: stopping the worker stops its batch producer too
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _read_results(work: Path, names: list[str]) -> dict[str, dict]:
    rows = {}
    for name in names:
        path = work / "results" / f"{name}.json"
        try:
            rows[name] = json.loads(path.read_text())
        except (OSError, ValueError):
            rows[name] = {"variant": name, "status": "starting"}
    return rows


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][-110:] if lines else ""


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def _score_key(row: dict):
    acc = (row.get("accuracy") or {}).get("all")
    loss = row.get("final_loss")
    # scored first, then accuracy, then the wider block, then the lower loss
    return (acc is not None, acc or 0.0, row.get("block_size", 0), -(loss if loss is not None else float("inf")))


def _pack_best(out: Path, work: Path, rows: dict[str, dict]) -> dict[str, dict]:
    best: dict[str, dict] = {}
    for group in dict.fromkeys(VARIANTS[n].group for n in rows):
        ready = [n for n in rows if VARIANTS[n].group == group and (work / "ckpt" / n / "model.safetensors").is_file()
                 and "steps_done" in rows[n]]
        if not ready:
            continue
        name = max(ready, key=lambda n: _score_key(rows[n]))
        tarball = out / f"{group}.tar.gz"
        with tarfile.open(tarball, "w:gz") as tar:
            tar.add(work / "ckpt" / name, arcname=VARIANTS[name].checkpoint,
                    filter=lambda m: None if m.name.endswith(".tmp") else m)
        best[group] = {"variant": name, "tarball": tarball.name, "checkpoint": VARIANTS[name].checkpoint,
                       "scored": "accuracy" in rows[name], "bytes": tarball.stat().st_size}
    return best


def _stop(procs: dict[str, subprocess.Popen]) -> dict[str, int | None]:
    codes = {}
    for name, proc in procs.items():
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            codes[name] = None  # stopped at the budget
        else:
            codes[name] = proc.returncode
    return codes


def _watch(args, procs, work: Path, summary: dict, out: Path, deadline: float) -> None:
    names, last_print, last_rows = list(procs), 0.0, None
    while any(p.poll() is None for p in procs.values()) and time.time() < deadline - PACK_RESERVE_S:
        time.sleep(1.0)
        rows = _read_results(work, names)
        if rows != last_rows:
            summary["variants"], last_rows = rows, rows
            _write_json(out / "summary.json", summary)
        if time.time() - last_print >= 30:
            last_print = time.time()
            for name in names:
                print(f"[{time.time() - summary['started']:5.0f}s] {name:18} {rows[name]['status']:9} "
                      f"{_last_line(work / 'logs' / f'{name}.log')}", flush=True)


def _table(rows: dict[str, dict]) -> str:
    lines = ["variant | status | steps | batch | lr | s/step | loss | all | copy | reverse | parity"]
    for name, r in rows.items():
        acc = r.get("accuracy") or {}
        pct = [f"{100 * acc[k]:.1f}%" if acc.get(k) is not None else "-" for k in ("all", "copy", "reverse", "parity")]
        sps = f"{r['s_per_step'] * 1e3:.1f}ms" if r.get("s_per_step") is not None else "-"
        loss = f"{r['final_loss']:.3g}" if r.get("final_loss") is not None else "-"
        lines.append(" | ".join([name, r["status"], f"{r.get('steps_done', '-')}/{r.get('steps_planned', '-')}",
                                 str(r.get("batch_size", "-")), str(r.get("lr", "-")), sps, loss, *pct]))
    return "\n".join(lines)


def parent(args) -> int:
    started = time.time()
    deadline = started + args.budget_s
    names = [n.strip() for n in args.variants.split(",") if n.strip()]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or not names:
        raise SystemExit(f"unknown variants {unknown}; valid: {', '.join(VARIANTS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(args.work or tempfile.mkdtemp(prefix="gpu_train_"))
    for sub in ("logs", "results", "probe", "ckpt"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    summary = {"started": started, "budget_s": args.budget_s, "device": args.device, "eval_device": args.eval_device,
               "seed": args.seed, "heldout": str(HELDOUT.relative_to(REPO)), "variants_defined":
               {n: asdict(VARIANTS[n]) for n in names}, "variants": {}}
    print(f"gpu_train: {len(names)} variants on {args.device}, budget {args.budget_s:.0f}s, work {work}", flush=True)
    procs = {name: _launch(args, name, work, deadline) for name in names}
    _watch(args, procs, work, summary, out, deadline)
    codes = _stop(procs)
    rows = _read_results(work, names)
    for name, code in codes.items():
        if rows[name]["status"] not in ("done", "failed"):
            rows[name]["status"] = "stopped" if code is None else f"exited {code} while {rows[name]['status']}"
    summary.update(variants=rows, best=_pack_best(out, work, rows), wall_s=round(time.time() - started, 1))
    with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
        tar.add(work / "logs", arcname="logs")
    _write_json(out / "summary.json", summary)
    print(_table(rows), flush=True)
    for name, row in rows.items():
        if row.get("error") or str(row.get("device_check", "")).startswith("failed"):
            print(f"{name}: {row.get('error') or row['device_check']}", flush=True)
    print(f"best: {json.dumps(summary['best'])}; wall {summary['wall_s']}s", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.worker:
        sys.path.insert(0, str(REPO))
        return worker(args)
    return parent(args)


if __name__ == "__main__":
    raise SystemExit(main())
