#!/usr/bin/env bash
# Sets everything up on a fresh machine, then runs the whole test suite (CPU only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
