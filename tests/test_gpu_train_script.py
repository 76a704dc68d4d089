"""scripts/gpu_train.py end to end on the CPU with a toy budget: the summary and tarballs the GPU run hands back."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from dllm_backend.core.reference.loading import load_reference

ROOT = Path(__file__).resolve().parents[1]
CHECKPOINT_FILES = ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
                    "tokenizer.json", "tokenizer_config.json"]


def test_cpu_smoke_run_writes_summary_and_best_checkpoints(tmp_path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "scripts" / "gpu_train.py"), "--out", str(out), "--work", str(tmp_path / "work"),
           "--device", "cpu", "--budget-s", "150", "--eval-reserve-s", "40", "--variants", "llada-b64,sdar16-b128",
           "--max-batch", "2", "--probe-steps", "2", "--max-steps", "3", "--eval-limit", "4"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=170)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["llada.tar.gz", "logs.tar.gz", "sdar-wide.tar.gz", "summary.json"]

    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["variants"]) == {"llada-b64", "sdar16-b128"}
    for name, row in summary["variants"].items():
        assert row["status"] == "done", (name, row)
        assert (row["batch_size"], row["steps_planned"], row["steps_done"], row["eval_examples"]) == (2, 3, 3, 4)
        assert {"recipe", "lr", "seconds", "s_per_step", "final_loss", "reproduce", "eval_seconds"} <= set(row)
        # the first 4 held-out examples: parity, reverse, parity, copy
        assert set(row["accuracy"]) == {"all", "copy", "parity", "reverse"}
        assert f"--batch-size 2 --lr {row['lr']} --device cpu" in row["reproduce"]
        assert row["tokenizer_as_committed"] is True
    assert summary["variants"]["sdar16-b128"]["block_size"] == 16
    assert summary["best"]["llada"]["variant"] == "llada-b64"
    assert summary["best"]["sdar-wide"]["checkpoint"] == "sdar16-tiny-digits"

    wanted = (("llada.tar.gz", "llada-tiny-digits", 32), ("sdar-wide.tar.gz", "sdar16-tiny-digits", 16))
    for tarball, name, block in wanted:
        with tarfile.open(out / tarball) as tar:
            assert sorted(m.name for m in tar.getmembers() if m.isfile()) == [f"{name}/{f}" for f in CHECKPOINT_FILES]
            tar.extractall(tmp_path / "unpacked", filter="data")
        assert load_reference(tmp_path / "unpacked" / name).family.block_size == block
    with tarfile.open(out / "logs.tar.gz") as tar:
        assert sorted(m.name for m in tar.getmembers() if m.isfile()) == ["logs/llada-b64.log", "logs/sdar16-b128.log"]
