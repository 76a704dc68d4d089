"""`dllm-backend bench` through the real vLLM engine: records, token agreement with the reference, the written outputs.

Random-weight checkpoints in the trained recipes' layouts (SDAR and the Qwen3 AR twin); no
timing is asserted, only counts, token ids, scores and what the run writes.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from dllm_backend.bench.document import BEGIN, END
from dllm_backend.bench.reference_runner import ReferenceRunner
from dllm_backend.bench.sweep import SweepPoint
from dllm_backend.train.checkpoint import build_network, save_weights, write_config_and_tokenizer
from dllm_backend.train.recipes import RECIPES
from dllm_backend.train.tasks import examples

EXAMPLES = examples(5, seed=3)
MAX_TOKENS = 9


def _checkpoint(kind: str, path: Path) -> Path:
    recipe = RECIPES.get(kind)
    config, _ = write_config_and_tokenizer(recipe, path)
    save_weights(build_network(recipe, config, seed=2), path / "model.safetensors")
    return path


@pytest.fixture(scope="module")
def sdar_dir(tmp_path_factory):
    return _checkpoint("sdar", tmp_path_factory.mktemp("sdar"))


@pytest.fixture(scope="module")
def ar_dir(tmp_path_factory):
    return _checkpoint("ar", tmp_path_factory.mktemp("ar"))


@pytest.fixture(scope="module")
def sdar_engine(sdar_dir):
    from dllm_backend.bench.vllm_runner import VllmRunner

    runner = VllmRunner(sdar_dir, max_num_seqs=4)
    yield runner
    runner.close()


@pytest.mark.parametrize("concurrency", [1, 3])
def test_engine_records_equal_the_reference(sdar_engine, sdar_dir, concurrency) -> None:
    point = SweepPoint("threshold", (("threshold", 0.5),), concurrency=concurrency)
    got = sdar_engine.run_point(EXAMPLES, point, MAX_TOKENS)
    want = ReferenceRunner(sdar_dir).run_point(EXAMPLES, SweepPoint("threshold", (("threshold", 0.5),)), MAX_TOKENS)
    assert [r.request_id for r in got] == [str(i) for i in range(len(EXAMPLES))]
    assert [r.output_ids for r in got] == [r.output_ids for r in want]
    assert [r.correct for r in got] == [r.correct for r in want]
    assert [r.steps for r in got] == [r.steps for r in want]  # denoising steps agree; forwards are counted per engine
    for r in got:
        assert r.output_tokens == len(r.output_ids) and r.nfe >= r.steps >= 1
        assert r.first_token_s is not None and r.start_s <= r.first_token_s <= r.end_s


def test_closed_loop_keeps_at_most_concurrency_in_flight(sdar_engine) -> None:
    records = sdar_engine.run_point(EXAMPLES, SweepPoint("low_confidence", concurrency=2), MAX_TOKENS)
    events = sorted([(r.start_s, 1) for r in records] + [(r.end_s, -1) for r in records])
    live = peak = 0
    for _, delta in events:
        live += delta
        peak = max(peak, live)
    assert peak == 2


def test_engine_refuses_points_that_do_not_apply(sdar_engine) -> None:
    with pytest.raises(ValueError, match="exceeds the engine's max_num_seqs 4"):
        sdar_engine.run_point(EXAMPLES, SweepPoint("low_confidence", concurrency=8), MAX_TOKENS)
    with pytest.raises(ValueError, match="is a dLLM: sweep point 'greedy'"):
        sdar_engine.run_point(EXAMPLES, SweepPoint("greedy"), MAX_TOKENS)


def test_bench_command_writes_results_plots_and_document(ar_dir, tmp_path, capsys) -> None:
    """The AR twin on stock vLLM and the reference, through the CLI: one JSON, one table, the
    concurrency plot, and the document's generated section replaced in place."""
    from dllm_backend.cli import main

    eval_path = tmp_path / "eval.jsonl"
    eval_path.write_text("".join(json.dumps(e.to_json()) + "\n" for e in EXAMPLES))
    doc = tmp_path / "bench.md"
    doc.write_text(f"# Notes before\n\n{BEGIN}\nold\n{END}\n\nNotes after\n")
    out = tmp_path / "out"
    code = main(["bench", str(ar_dir), "--runner", "vllm,reference", "--eval", str(eval_path), "--concurrency", "1,4",
                 "--max-tokens", str(MAX_TOKENS), "--out", str(out), "--doc", str(doc)])
    assert code == 0
    summaries = json.loads((out / "results.json").read_text())["results"]
    assert all("records" not in r for r in summaries)  # per-request records go to the gzip file
    with gzip.open(out / "records.jsonl.gz", "rt") as f:
        results = [json.loads(line) for line in f]
    assert [(r["runner"], r["point"]["concurrency"]) for r in results] == [("reference", 1), ("vllm", 1), ("vllm", 4)]
    assert [r["summary"] for r in results] == [r["summary"] for r in summaries]
    ids = [[rec["output_ids"] for rec in r["records"]] for r in results]
    assert ids[0] == ids[1] == ids[2]  # stock vLLM greedy == the reference greedy loop, at any concurrency
    assert all(rec["nfe"] == rec["output_tokens"] for r in results for rec in r["records"])
    assert (out / "throughput_vs_concurrency.png").read_bytes()[:4] == b"\x89PNG"
    text = doc.read_text()
    assert text.startswith("# Notes before\n") and text.endswith("Notes after\n") and "\nold\n" not in text
    assert "| plugin_vs_reference |" in text and "reference | greedy" in text
    assert "reference | greedy" in capsys.readouterr().out
