#!/usr/bin/env bash
# The main job: sets everything up, builds tiny checkpoints and decodes a prompt with the
# reference generators, printing the text, the denoising steps and tokens per step.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/reference_demo.py "$@"
