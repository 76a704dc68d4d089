#!/usr/bin/env bash
# The main job: sets everything up, serves the trained block-diffusion checkpoint
# (checkpoints/sdar16-tiny-digits, SDAR layout, blocks of 16) with vLLM's OpenAI server and the
# dllm_backend plugin, and its autoregressive twin (checkpoints/qwen3-ar-tiny-digits, stock
# Qwen3, same size and data) with the same server, sends the same held-out prompts to both and
# prints the answers with model forwards and tokens per forward side by side, then stops both.
# Env: DLLM_COUNT (held-out prompts, default 6), DLLM_STARTUP_S (default 900: start-up takes
# about 40-60 s on 2 idle cores, several times that on a busy machine).
# The reference generators of every family: .venv/bin/python examples/reference_demo.py
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python
mkdir -p .cache
free_port() { "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PIDS=()
stop() {
  for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
}
trap stop EXIT

# start NAME CKPT PORT SERVER...: one server in its own session (the API server and its
# engine-core process stop together), log in .cache/NAME.log
start() {
  local name=$1 ckpt=$2 port=$3
  shift 3
  echo "starting $name ($ckpt) on 127.0.0.1:$port (log: .cache/$name.log)"
  VLLM_CPU_KVCACHE_SPACE=1 setsid "$@" "$ckpt" --host 127.0.0.1 --port "$port" \
    --served-model-name "$name" --dtype float32 --max-model-len 256 >".cache/$name.log" 2>&1 &
  PIDS+=($!)
}
wait_healthy() {
  local deadline=$((SECONDS + ${DLLM_STARTUP_S:-900}))
  until "$PY" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
      "http://127.0.0.1:$2/health" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$3" 2>/dev/null; then
      echo "$1 did not become healthy; last lines of .cache/$1.log:" >&2
      tail -n 40 ".cache/$1.log" >&2
      exit 1
    fi
    sleep 2
  done
  echo "$1 ready after ${SECONDS} s"
}

DLLM_PORT=$(free_port)
AR_PORT=$(free_port)
start sdar16-digits checkpoints/sdar16-tiny-digits "$DLLM_PORT" "$PY" -m dllm_backend.cli serve
# the twin on stock vLLM (the plugin leaves non-dLLM architectures alone)
start qwen3-ar-digits checkpoints/qwen3-ar-tiny-digits "$AR_PORT" \
  "$PY" -m vllm.entrypoints.openai.api_server --enforce-eager --model
wait_healthy sdar16-digits "$DLLM_PORT" "${PIDS[0]}"
wait_healthy qwen3-ar-digits "$AR_PORT" "${PIDS[1]}"
"$PY" examples/compare_ar.py --dllm "http://127.0.0.1:$DLLM_PORT/v1" --ar "http://127.0.0.1:$AR_PORT/v1" \
  --heldout checkpoints/heldout.jsonl --count "${DLLM_COUNT:-6}"
