"""PNG figures of a benchmark run.

- accuracy_vs_throughput.png: each dLLM's accuracy / tokens-per-second trade-off per algorithm
  (vLLM runner, default steps / block / cache, the model's highest concurrency), with the AR
  twin's greedy point as a reference marker;
- accuracy_vs_steps.png: test-time scaling of `low_confidence` (fixed steps per block): accuracy
  and tokens/s against denoising steps per block;
- throughput_vs_concurrency.png: tokens/s against concurrency for every decoding point run at
  two or more concurrencies.

The `*_data` functions select and shape the numbers (no matplotlib, tested exactly); the
`_draw_*` functions only draw them. matplotlib is imported inside the drawing code so that the
bench (and this module) works without it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .report import PointResult
from .sweep import SweepPoint
from .targets import base_point, check_results, is_ar, models_in_order, tok_s

DPI = 110
FRONTIER_PNG = "accuracy_vs_throughput.png"
STEPS_PNG = "accuracy_vs_steps.png"
CONCURRENCY_PNG = "throughput_vs_concurrency.png"
FIXED_STEPS_ALGORITHM = "low_confidence"

# model -> (concurrency, {algorithm: [(tok/s, accuracy %, knob text)]}, [(AR label, tok/s, accuracy %)])
Frontier = dict[str, tuple[int, dict[str, list[tuple[float, float, str]]], list[tuple[str, float, float]]]]
# model -> (concurrency, {series: [(steps per block, accuracy %, tok/s)]}, points left out)
Steps = dict[str, tuple[int, dict[str, list[tuple[int, float, float]]], int]]
# model -> {(runner, label without concurrency): [(concurrency, tok/s)]}
Scaling = dict[str, dict[tuple[str, str], list[tuple[int, float]]]]


def _plottable(r: PointResult) -> bool:
    return r.summary.accuracy is not None and tok_s(r) is not None


def _default_shape(point: SweepPoint) -> bool:
    return point.steps is None and point.block_size is None and point.cache_mode == "exact"


def _knob_text(point: SweepPoint) -> str:
    return " ".join(f"{k}={v:g}" for k, v in point.knobs)


# ---------------------------------------------------------------- data


def frontier_data(results: Sequence[PointResult]) -> Frontier:
    vllm = [r for r in results if r.runner == "vllm" and _plottable(r)]
    ars = [r for r in vllm if is_ar(r)]
    out: Frontier = {}
    for model in models_in_order(vllm, ar=False):
        mine = [r for r in vllm if r.model == model and _default_shape(r.point)]
        if not mine:
            continue
        # one concurrency per panel: throughput at different concurrencies is not comparable
        conc = max(r.point.concurrency for r in mine)
        series: dict[str, list[tuple[float, float, str]]] = {}
        for r in sorted((r for r in mine if r.point.concurrency == conc), key=tok_s):
            series.setdefault(r.point.algorithm, []).append((tok_s(r), 100 * r.summary.accuracy, _knob_text(r.point)))
        out[model] = (conc, series, _ar_markers(ars, conc))
    return out


def _ar_markers(ars: Sequence[PointResult], conc: int) -> list[tuple[str, float, float]]:
    """Each AR twin's greedy point at `conc`, or at its highest concurrency when it lacks `conc`."""
    markers = []
    for model in models_in_order(ars, ar=True):
        at = {r.point.concurrency: r for r in ars if r.model == model}
        c = conc if conc in at else max(at)
        label = f"{model} greedy" + ("" if c == conc else f" (conc {c})")
        markers.append((label, tok_s(at[c]), 100 * at[c].summary.accuracy))
    return markers


def steps_data(results: Sequence[PointResult]) -> Steps:
    """`steps=None` (one token per step) is drawn at x = block size when the point names one;
    with the checkpoint's default block its x is unknown, so it is counted as left out."""
    chosen = [r for r in results
              if r.runner == "vllm" and r.point.algorithm == FIXED_STEPS_ALGORITHM and _plottable(r)]
    out: Steps = {}
    for model in models_in_order(chosen, ar=False):
        mine = [r for r in chosen if r.model == model]
        conc = max(r.point.concurrency for r in mine)
        series: dict[str, list[tuple[int, float, float]]] = {}
        left_out = 0
        for r in (r for r in mine if r.point.concurrency == conc):
            x = r.point.steps if r.point.steps is not None else r.point.block_size
            if x is None:
                left_out += 1
                continue
            block = "default" if r.point.block_size is None else r.point.block_size
            series.setdefault(f"block={block} cache={r.point.cache_mode}", []).append(
                (x, 100 * r.summary.accuracy, tok_s(r)))
        if series:
            out[model] = (conc, {k: sorted(v) for k, v in series.items()}, left_out)
    return out


def scaling_data(results: Sequence[PointResult]) -> Scaling:
    lines: dict[str, dict[tuple[str, str], list[tuple[int, float]]]] = {}
    for r in results:
        if tok_s(r) is not None:
            key = (r.runner, base_point(r.point).label)
            lines.setdefault(r.model, {}).setdefault(key, []).append((r.point.concurrency, tok_s(r)))
    out: Scaling = {}
    for model, by_key in lines.items():
        kept = {k: sorted(v) for k, v in by_key.items() if len(v) >= 2}
        if kept:
            out[model] = kept
    return out


# ---------------------------------------------------------------- drawing


def _figure(nrows: int, ncols: int, width: float, height: float):
    # NOTE: a bare Figure on an Agg canvas rather than pyplot: nothing touches pyplot's global
    # backend or figure registry, so there is no figure to leak or close and no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=DPI)
    fig.clear()  # drop the artists now rather than when the figure is collected
    return path


def _draw_frontier(data: Frontier, path: Path) -> Path:
    fig, axes = _figure(1, len(data), 5.5, 4.5)
    for ax, (model, (conc, series, ars)) in zip(axes[0], data.items()):
        for algorithm, pts in series.items():
            xs, ys, notes = zip(*pts)
            ax.plot(xs, ys, marker="o", label=algorithm)
            for x, y, note in pts:
                if note:
                    ax.annotate(note, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        for label, x, y in ars:
            ax.scatter([x], [y], marker="*", s=180, color="black", zorder=3, label=label)
        ax.set(title=f"{model} (vllm, conc {conc})", xlabel="output tokens/s", ylabel="accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Accuracy vs throughput (default steps / block / cache)")
    return _save(fig, path)


def _draw_steps(data: Steps, path: Path) -> Path:
    fig, axes = _figure(2, len(data), 5.5, 3.5)
    for col, (model, (conc, series, left_out)) in enumerate(data.items()):
        acc_ax, tps_ax = axes[0][col], axes[1][col]
        for name, pts in series.items():
            xs, accs, tpss = zip(*pts)
            acc_ax.plot(xs, accs, marker="o", label=name)
            tps_ax.plot(xs, tpss, marker="o", label=name)
        note = f"\n({left_out} one-token-per-step point(s) at the default block not shown)" if left_out else ""
        acc_ax.set(title=f"{model} ({FIXED_STEPS_ALGORITHM}, vllm, conc {conc}){note}", ylabel="accuracy (%)")
        acc_ax.title.set_fontsize(9)
        tps_ax.set(xlabel="denoising steps per block", ylabel="output tokens/s")
        steps = sorted({x for pts in series.values() for x, _, _ in pts})
        for ax in (acc_ax, tps_ax):
            ax.set_xscale("log", base=2)
            ax.set_xticks(steps, [str(x) for x in steps])
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("Test-time scaling: accuracy and throughput vs denoising steps")
    return _save(fig, path)


def _draw_scaling(data: Scaling, path: Path) -> Path:
    fig, axes = _figure(1, len(data), 5.5, 4.5)
    for ax, (model, lines) in zip(axes[0], data.items()):
        concs = sorted({c for pts in lines.values() for c, _ in pts})
        for (runner, label), pts in lines.items():
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", linestyle="-" if runner == "vllm" else "--", label=f"{runner}: {label}")
        ax.set_xscale("log", base=2)
        ax.set_xticks(concs, [str(c) for c in concs])
        ax.set(title=model, xlabel="concurrency", ylabel="output tokens/s")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("Throughput vs concurrency")
    return _save(fig, path)


def write_plots(results: Sequence[PointResult], out_dir: str | Path) -> list[Path]:
    """Writes the figures that have data into `out_dir` (created if needed); returns their paths.
    A figure with nothing to show is not written."""
    check_results(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = (
        (FRONTIER_PNG, frontier_data(results), _draw_frontier),
        (STEPS_PNG, steps_data(results), _draw_steps),
        (CONCURRENCY_PNG, scaling_data(results), _draw_scaling),
    )
    return [draw(data, out / name) for name, data, draw in figures if data]
