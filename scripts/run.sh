#!/usr/bin/env bash
# The main job: sets everything up, builds a tiny SDAR checkpoint, serves it with vLLM's
# OpenAI server and the dllm_backend plugin, sends one completion and one chat request,
# prints the answers with NFE and tokens per step, and shuts the server down.
# Env: DLLM_PORT (default: a free port), DLLM_STARTUP_S (default 900: start-up takes about
# 40 s on 2 idle cores, several times that on a busy machine).
# The reference generators of every family: .venv/bin/python examples/reference_demo.py
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
CKPT=.cache/tiny/SDARForCausalLM
LOG=.cache/server.log
[ -f "$CKPT/config.json" ] || "$PY" -m dllm_backend.cli make-tiny SDARForCausalLM "$CKPT"
PORT=${DLLM_PORT:-$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}

echo "starting the server on 127.0.0.1:$PORT (log: $LOG)"
# NOTE: its own session, so that the API server and its engine-core process stop together
setsid "$PY" -m dllm_backend.cli serve "$CKPT" --host 127.0.0.1 --port "$PORT" \
  --served-model-name tiny-sdar --dtype float32 --max-model-len 512 >"$LOG" 2>&1 &
SERVER=$!
stop() {
  kill -TERM -- "-$SERVER" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$SERVER" 2>/dev/null || return 0; sleep 1; done
  kill -KILL -- "-$SERVER" 2>/dev/null || true
}
trap stop EXIT

fail() { echo "$1; last lines of $LOG:" >&2; tail -n 40 "$LOG" >&2; exit 1; }
deadline=$((SECONDS + ${DLLM_STARTUP_S:-900}))
until "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
    "http://127.0.0.1:$PORT/health" 2>/dev/null; do
  kill -0 "$SERVER" 2>/dev/null || fail "the server exited during start-up"
  [ "$SECONDS" -lt "$deadline" ] || fail "the server was not healthy after ${DLLM_STARTUP_S:-900} s"
  sleep 2
done
echo "server ready after ${SECONDS} s"
"$PY" examples/openai_client.py --base-url "http://127.0.0.1:$PORT/v1" --model tiny-sdar "$@" \
  || fail "the client failed"
