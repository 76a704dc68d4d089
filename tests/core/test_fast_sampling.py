"""The proposal's GPU path (`fast_sampling`, Triton kernels) against the torch path.

The kernels run here in Triton's interpreter (TRITON_INTERPRET=1, in a subprocess: the
variable is read when the kernels are defined); on a GPU the same comparison is the parity
section of benchmarks/policy_step.py.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dllm_backend.core.policies import fast_sampling
from dllm_backend.core.policies.rng import STREAM_TOKENS, token_keys, token_uniform, token_uniform_from_keys

ROOT = Path(__file__).resolve().parents[2]


def test_sort_key_orders_by_value_then_lower_id():
    values = torch.tensor([1.0, -2.0, 1.0, float("-inf"), 0.0, -0.5, 3.0, 1.0])
    ids = torch.tensor([5, 0, 2, 7, 1, 3, 9, 4])
    order = fast_sampling.sort_key(values, ids).argsort(descending=True)
    assert ids[order].tolist() == [9, 2, 4, 5, 1, 3, 0, 7]


def test_candidates_are_the_exact_ranking_above_the_floor():
    torch.manual_seed(0)
    scaled = torch.randn(2, 3, 3 * fast_sampling.CHUNK + 37)
    scaled[0, 0, :40] = 9.0  # ties and a dense chunk
    values, ids, floor = fast_sampling.candidates(scaled)
    for r in range(2):
        for b in range(3):
            ranked, order = torch.sort(scaled[r, b], descending=True, stable=True)
            n = int((ranked > floor[r, b]).sum())
            # the row with 40 tied values in one chunk has its floor at them: none above
            assert n == 0 if (r, b) == (0, 0) else n >= fast_sampling.PER_CHUNK
            assert torch.equal(values[r, b, :n], ranked[:n])
            assert torch.equal(ids[r, b, :n], order[:n])
            # the row's top PER_CHUNK values are always candidates (which of tied ids: any)
            k = fast_sampling.PER_CHUNK
            assert torch.equal(values[r, b, :k], ranked[:k])


def test_token_noise_from_keys_is_the_same_draw():
    seed, offset = torch.tensor([3, 2**40 + 1]), torch.tensor([0, 7])
    keys = token_keys(seed, offset, STREAM_TOKENS, 5)
    assert torch.equal(token_uniform(seed, offset, STREAM_TOKENS, 5, 33), token_uniform_from_keys(keys, 33))


def test_kernels_equal_the_torch_path_in_the_interpreter(tmp_path):
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", DLLM_POLICY_KERNELS="on", PYTHONPATH=str(ROOT))
    cmd = [sys.executable, str(ROOT / "benchmarks" / "policy_step.py"), "--device", "cpu", "--quick",
           "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((tmp_path / "policy_step.json").read_text())["parity"]
    assert res.get("error") is None, res
    assert res["cases"] == 4 and res["ok"], res
