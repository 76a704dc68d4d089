"""The denoising policy step on one device: kernel path vs torch path, sync-free, graphs, time.

    PYTHONPATH=. python benchmarks/policy_step.py --device cuda --out OUT_DIR      # ~1-2 min on an H200
    TRITON_INTERPRET=1 DLLM_POLICY_KERNELS=on PYTHONPATH=. python benchmarks/policy_step.py \
        --device cpu --quick --out DIR      # the parity part on CPU, Triton's interpreter (CI)

Sections (each one's failure is recorded and the others still run; results.json in --out):
- parity: the proposal's fast path (`fast_sampling`: candidate top-p / top-k, fused
  Gumbel-max) against the torch path on the same device and logits, over styles, mixed rows
  (greedy / sampled, top_p, top_k, both) and vocabularies. x0 must be equal; the kept sets of
  the filters must be equal except at a nucleus boundary within float rounding of top_p
  (counted, and each one checked to be such a boundary); confidences within 1e-5. A row alone
  must give what it gives inside the batch.
- cpu_gpu (cuda): the fast path on the GPU against the torch path on the CPU, 4 steps of every
  policy, greedy and sampled rows: the tokens.
- capture (cuda): every policy's step (fast path) under sync-debug "error" (any host sync
  raises), captured in a CUDA graph; replay == eager.
- timing (cuda): a `threshold` step at R=16, B=32, V=126,464 for greedy / temperature /
  top_p / top_k / all, on peaked and on flat logits, torch path vs fast path, CUDA events.
- memory (cuda): peak memory a step allocates beyond its bf16 logits, per logits row, in
  float32 vocabulary rows, at V = 126,464 and 157,184, for three policies and both paths.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
import traceback

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dllm_backend.core.policies import POLICIES, DecodeConfig, ParamBatch, fast_sampling, new_block_state, step  # noqa: E402
from dllm_backend.core.policies import sampling  # noqa: E402

EOS = 4
ROW_CONFIGS = (  # (temperature, top_p, top_k)
    (0.0, 1.0, 0), (0.7, 1.0, 0), (0.7, 0.9, 0), (1.0, 1.0, 8), (0.8, 0.95, 12), (0.0, 0.8, 0),
    (1.3, 0.5, 0), (0.7, 0.95, 50),
)


def logits_like(kind: str, rows: int, width: int, vocab: int, device, seed: int) -> torch.Tensor:
    """'flat': N(0, 1); 'peaked': 8 tokens raised by 6-12 over N(0, 4) (at T = 0.7 the tail
    still holds a quarter of the mass); 'sharp': 8 tokens raised by 15-25 over N(0, 1), the
    tail ~1e-6 of the mass (a confident trained model)."""
    g = torch.Generator(device=device).manual_seed(seed)
    base = torch.randn((rows, width, vocab), generator=g, device=device)
    if kind == "flat":
        return base
    top = torch.randint(0, vocab, (rows, width, 8), generator=g, device=device)
    low, span, scale = (6, 6, 2) if kind == "peaked" else (15, 10, 1)
    bump = torch.rand((rows, width, 8), generator=g, device=device) * span + low
    return (base * scale).scatter_add_(-1, top, bump)


def _configs(algorithm: str, rows: int, seed: int) -> list[DecodeConfig]:
    out = []
    for r in range(rows):
        t, p, k = ROW_CONFIGS[(r + seed) % len(ROW_CONFIGS)]
        out.append(DecodeConfig(algorithm, temperature=t, top_p=p, top_k=k, seed=seed * 100 + r))
    return out


def _with_mode(mode: str, fn):
    fast_sampling.set_mode(mode)
    try:
        return fn()
    finally:
        fast_sampling.set_mode("auto")


def _boundary_ok(scaled_row: torch.Tensor, top_p: float, keep_a: torch.Tensor, keep_b: torch.Tensor) -> bool:
    """The kept sets differ only in tokens whose mass before them is within 1e-5 of top_p."""
    ranked, order = torch.sort(scaled_row.double(), descending=True, stable=True)
    before = torch.softmax(ranked, dim=-1).cumsum(dim=-1) - torch.softmax(ranked, dim=-1)
    differ = (keep_a != keep_b)[order]
    return bool(((before - top_p).abs()[differ] < 1e-5).all())


def parity(device, vocabs, cases: int) -> dict:
    res = {"cases": 0, "x0_mismatch": 0, "conf_mismatch": 0, "filter_boundary_diffs": 0,
           "filter_other_diffs": 0, "batch_dependence": 0}
    mask_id = 7
    for vocab in vocabs:
        for case in range(cases):
            rows, width = 8, 5
            kind = "flat" if case % 2 else "peaked"
            logits = logits_like(kind, rows, width, vocab, device, 10 * case + vocab % 97)
            logits[..., mask_id] += 4.0 * (case % 3)  # the mask token takes part of the mass
            params = ParamBatch.from_configs(_configs("threshold", rows, case), [EOS], device)
            offset = torch.arange(rows, device=device) * 3
            z = sampling.prepare_logits(logits, params)
            scale = torch.where(params.temperature > 0, params.temperature, torch.ones_like(params.temperature))
            scaled = z / scale.to(torch.float32)[:, None, None]
            fa = _with_mode("off", lambda: sampling.filter_logits(scaled, params))
            fb = _with_mode("on", lambda: sampling.filter_logits(scaled, params))
            ka, kb = torch.isfinite(fa), torch.isfinite(fb)
            for r in range(rows):
                for b in range(width):
                    if torch.equal(ka[r, b], kb[r, b]):
                        continue
                    if _boundary_ok(scaled[r, b].cpu(), float(params.top_p[r]), ka[r, b].cpu(), kb[r, b].cpu()):
                        res["filter_boundary_diffs"] += 1
                    else:
                        res["filter_other_diffs"] += 1
            same_filter = bool(torch.equal(ka, kb))
            for style in ("llada", "dream"):
                xa, ca = _with_mode("off", lambda: sampling.propose(z, params, offset, mask_id, style))
                xb, cb = _with_mode("on", lambda: sampling.propose(z, params, offset, mask_id, style))
                res["cases"] += 1
                if same_filter:
                    res["x0_mismatch"] += int((xa != xb).sum())
                    res["conf_mismatch"] += int(((ca - cb).abs() > 1e-5).sum())
                # batch independence of the fast path: row 3 alone
                one = ParamBatch.from_configs(_configs("threshold", rows, case)[3:4], [EOS], device)
                xo, _ = _with_mode("on", lambda: sampling.propose(z[3:4], one, offset[3:4], mask_id, style))
                res["batch_dependence"] += int((xo[0] != xb[3]).sum())
    res["self_test"] = fast_sampling._kernels_work(str(torch.device(device)))
    res["ok"] = res["x0_mismatch"] == res["conf_mismatch"] == res["filter_other_diffs"] == res["batch_dependence"] == 0
    res["ok"] = res["ok"] and res["self_test"]
    return res


def cpu_gpu(vocab: int) -> dict:
    mask_id, res = vocab - 1, {}
    for name in POLICIES.names():
        rows, width = 8, 32
        cfgs = _configs(name, rows, 1)
        logits = logits_like("peaked", rows, width, vocab, "cpu", 5)
        outs = {}
        for dev, mode in (("cpu", "off"), ("cuda", "auto")):
            def run():
                params = ParamBatch.from_configs(cfgs, [EOS], dev)
                tokens = torch.full((rows, width), mask_id, dtype=torch.long, device=dev)
                state = new_block_state(tokens, torch.ones_like(tokens, dtype=torch.bool), params, mask_id, vocab_size=vocab)
                seq, lg = [], logits.to(dev)
                for _ in range(4):
                    out = step(lg, state, params, mask_id)
                    state.tokens = out.tokens
                    state.step += 1
                    state.rng_offset += 1
                    seq.append(out.tokens.cpu())
                return torch.stack(seq)
            outs[dev] = _with_mode(mode, run)
        res[name] = int((outs["cpu"] != outs["cuda"]).sum())
    res["ok"] = all(v == 0 for k, v in res.items())
    return res


def _clone(s):
    c = copy.copy(s)
    for f in ("tokens", "editable", "step", "num_steps", "initial_masks", "rng_offset"):
        setattr(c, f, getattr(s, f).clone())
    c.extra = {k: v.clone() for k, v in s.extra.items()}
    return c


def capture(vocab: int) -> dict:
    mask_id, res = vocab - 1, {}
    for name in list(POLICIES.names()) + ["MIXED"]:
        algos = POLICIES.names() if name == "MIXED" else [name]
        rows, width = 16, 32
        cfgs = [c for i, c in enumerate(_configs("threshold", rows, 2))]
        cfgs = [DecodeConfig(algos[i % len(algos)], temperature=c.temperature, top_p=c.top_p, top_k=c.top_k,
                             seed=c.seed) for i, c in enumerate(cfgs)]
        params = ParamBatch.from_configs(cfgs, [EOS], "cuda")
        tokens = torch.full((rows, width), mask_id, dtype=torch.long, device="cuda")
        state = new_block_state(tokens, torch.ones_like(tokens, dtype=torch.bool), params, mask_id, vocab_size=vocab)
        logits = logits_like("peaked", rows, width, vocab, "cuda", 3)
        r: dict = {}
        try:
            step(logits, _clone(state), params, mask_id)  # warm-up: kernel compiles, one-time checks
            torch.cuda.synchronize()
            torch.cuda.set_sync_debug_mode("error")
            try:
                eager = step(logits, _clone(state), params, mask_id)
                r["sync_free"] = True
            except RuntimeError as e:
                r["sync_free"] = False
                r["sync_error"] = str(e).splitlines()[0][:200]
            finally:
                torch.cuda.set_sync_debug_mode(0)
            eager = step(logits, _clone(state), params, mask_id)
            static = _clone(state)
            extra0 = {k: v.clone() for k, v in static.extra.items()}
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for _ in range(2):
                    step(logits, static, params, mask_id)
                    for k, v in extra0.items():
                        static.extra[k].copy_(v)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                out = step(logits, static, params, mask_id)
            for k, v in extra0.items():
                static.extra[k].copy_(v)
            graph.replay()
            torch.cuda.synchronize()
            r["graph_equals_eager"] = all(torch.equal(getattr(eager, f), getattr(out, f)) for f in ("tokens", "committed", "done"))
        except Exception as e:  # noqa: BLE001 - recorded, the other policies still run
            r["error"] = (type(e).__name__ + ": " + str(e))[:300]
        res[name] = r
    res["ok"] = all(v.get("sync_free") and v.get("graph_equals_eager") for v in res.values())
    return res


def timing(vocab: int = 126464, rows: int = 16, width: int = 32) -> dict:
    mask_id, res = 126336 if vocab == 126464 else vocab - 1, {}
    settings = {
        "greedy": {}, "t0.7": dict(temperature=0.7), "t0.7 top_p0.95": dict(temperature=0.7, top_p=0.95),
        "t0.7 top_k50": dict(temperature=0.7, top_k=50),
        "t0.7 top_p0.95 top_k50": dict(temperature=0.7, top_p=0.95, top_k=50),
    }
    for kind in ("sharp", "peaked", "flat"):
        logits = logits_like(kind, rows, width, vocab, "cuda", 11)
        for label, kw in settings.items():
            params = ParamBatch.from_configs([DecodeConfig("threshold", seed=i, **kw) for i in range(rows)], [EOS], "cuda")
            tokens = torch.full((rows, width), mask_id, dtype=torch.long, device="cuda")
            state = new_block_state(tokens, torch.ones_like(tokens, dtype=torch.bool), params, mask_id, vocab_size=vocab)
            for mode in ("off", "auto"):
                def run():
                    for _ in range(3):
                        step(logits, state, params, mask_id)
                    torch.cuda.synchronize()
                    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    e0.record()
                    for _ in range(10):
                        step(logits, state, params, mask_id)
                    e1.record()
                    torch.cuda.synchronize()
                    return round(e0.elapsed_time(e1) / 10, 3)
                key = f"{kind} {label} {'torch' if mode == 'off' else 'kernels'}"
                try:
                    res[key] = _with_mode(mode, run)
                except Exception as e:  # noqa: BLE001 - recorded; the other cells still run
                    res[key] = f"error: {type(e).__name__}: {e}"[:300]
        for mode in ("torch", "kernels"):
            greedy = res[f"{kind} greedy {mode}"]
            for label in settings:
                cell = res[f"{kind} {label} {mode}"]
                if isinstance(cell, float) and isinstance(greedy, float):
                    res[f"{kind} {label} {mode} / greedy {mode}"] = round(cell / greedy, 2)
    return res


def profile(out_dir: str, vocab: int = 126464, rows: int = 16, width: int = 32) -> dict:
    """torch.profiler tables (CUDA time) of the fast path's sampled steps, to profile.txt."""
    from torch.profiler import ProfilerActivity, profile as torch_profile

    mask_id, tables = 126336, []
    for kind, kw in (("sharp", dict(temperature=0.7, top_p=0.95)), ("peaked", dict(temperature=0.7, top_p=0.95)),
                     ("peaked", dict(temperature=0.7))):
        logits = logits_like(kind, rows, width, vocab, "cuda", 11)
        params = ParamBatch.from_configs([DecodeConfig("threshold", seed=i, **kw) for i in range(rows)], [EOS], "cuda")
        tokens = torch.full((rows, width), mask_id, dtype=torch.long, device="cuda")
        state = new_block_state(tokens, torch.ones_like(tokens, dtype=torch.bool), params, mask_id, vocab_size=vocab)
        step(logits, state, params, mask_id)
        torch.cuda.synchronize()
        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(3):
                step(logits, state, params, mask_id)
            torch.cuda.synchronize()
        tables.append(f"== {kind} {kw} (3 steps)\n" + prof.key_averages().table(sort_by="cuda_time_total", row_limit=18))
    with open(os.path.join(out_dir, "profile.txt"), "w") as f:
        f.write("\n".join(tables))
    return {"tables": len(tables)}


def memory(rows: int = 16, width: int = 32) -> dict:
    """Peak device memory a step allocates beyond its logits, per logits row, in units of one
    float32 vocabulary row (V * 4 bytes): what the KV-cache sizing must leave free per row."""
    res = {}
    settings = {"greedy": {}, "t0.7": dict(temperature=0.7), "t0.7 top_p0.95": dict(temperature=0.7, top_p=0.95),
                "t0.7 top_k50": dict(temperature=0.7, top_k=50)}
    for vocab in (126464, 157184):
        mask_id = vocab - 1
        logits = logits_like("peaked", rows, width, vocab, "cuda", 1).to(torch.bfloat16)
        for label, kw in settings.items():
            for algo in ("threshold", "low_confidence", "entropy"):
                params = ParamBatch.from_configs([DecodeConfig(algo, seed=i, **kw) for i in range(rows)], [EOS], "cuda")
                tokens = torch.full((rows, width), mask_id, dtype=torch.long, device="cuda")
                state = new_block_state(tokens, torch.ones_like(tokens, dtype=torch.bool), params, mask_id, vocab_size=vocab)
                for mode in ("off", "auto"):
                    def run():
                        step(logits, state, params, mask_id)  # warm-up (kernel compile, caches)
                        torch.cuda.synchronize()
                        base = torch.cuda.memory_allocated()
                        torch.cuda.reset_peak_memory_stats()
                        step(logits, state, params, mask_id)
                        torch.cuda.synchronize()
                        return round((torch.cuda.max_memory_allocated() - base) / (rows * width * vocab * 4), 2)
                    key = f"V={vocab} {algo} {label} {'torch' if mode == 'off' else 'kernels'}"
                    try:
                        res[key] = _with_mode(mode, run)
                    except Exception as e:  # noqa: BLE001 - recorded; the other cells still run
                        res[key] = f"error: {type(e).__name__}: {e}"[:300]
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default=os.environ.get("OUT", "."))
    ap.add_argument("--quick", action="store_true", help="parity only, small vocabularies (the CPU test)")
    ap.add_argument("--sections", default="", help="comma-separated subset (default: all the device runs)")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    res: dict = {"device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu", "torch": torch.__version__}
    wanted = set(filter(None, args.sections.split(",")))
    path = os.path.join(args.out, "policy_step" + ("-" + "-".join(sorted(wanted)) if wanted else "") + ".json")
    sections = [("parity", lambda: parity(args.device, (1300,) if args.quick else (2048, 32000, 126464),
                                          2 if args.quick else 6))]
    if args.device == "cuda":
        sections += [("cpu_gpu", lambda: cpu_gpu(32000)), ("capture", lambda: capture(126464)), ("timing", timing),
                     ("memory", memory), ("profile", lambda: profile(args.out))]
    for name, fn in sections:
        if wanted and name not in wanted:
            continue
        t0 = time.time()
        try:
            res[name] = fn()
        except Exception:  # noqa: BLE001 - recorded; the next section still runs
            res[name] = {"error": traceback.format_exc()[-1500:]}
        res[name + "_seconds"] = round(time.time() - t0, 1)
        print(name, json.dumps(res[name])[:2000], flush=True)
        with open(path, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
