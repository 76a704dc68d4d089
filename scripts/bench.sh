#!/usr/bin/env bash
# Regenerates docs/benchmarks.md (its generated section), docs/bench/results.{json,md} and the
# PNG plots: the default suite (dllm_backend/bench/suites/default.json) over the committed
# checkpoints, through vLLM on CPU (plugin for the dLLMs, stock vLLM for the AR twin) and the
# reference generators. About 25 minutes on 2 idle cores; run it on an otherwise idle machine.
# Extra arguments go to `dllm-backend bench` (e.g. --limit 32 for a quick look).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m dllm_backend.cli bench --out docs/bench --doc docs/benchmarks.md "$@"
