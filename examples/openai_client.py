"""Talks to a dLLM served by vLLM's OpenAI server: one completion and one chat request.

Start a server first (`scripts/run.sh` does all of it), e.g.

    dllm-backend serve .cache/tiny/SDARForCausalLM --port 8000 --served-model-name tiny-sdar

then `python examples/openai_client.py --base-url http://127.0.0.1:8000/v1 --model tiny-sdar`.
Decoding knobs go in the body's `vllm_xargs` (the standard `openai` client sends them
through `extra_body`); the server reports each request's model forwards (NFE) and
denoising steps in the response's `kv_transfer_params["dllm"]`.
"""
from __future__ import annotations

import argparse
import json
import time
import urllib.error
import urllib.request
from typing import Any

from openai import OpenAI


def wait_healthy(base_url: str, timeout_s: float) -> None:
    """Polls the server's /health until it answers 200 (bounded by `timeout_s`)."""
    health = base_url.rstrip("/").removesuffix("/v1") + "/health"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(2)
    raise SystemExit(f"no healthy server at {health} after {timeout_s:.0f} s")


def describe(kind: str, text: str, token_ids: list[int] | None, usage: Any, extra: dict[str, Any]) -> None:
    stats = (extra.get("kv_transfer_params") or {}).get("dllm") or {}
    print(f"\n[{kind}] {text!r}")
    if token_ids is not None:
        print(f"  token ids: {token_ids}")
    line = f"  {usage.completion_tokens} tokens"
    if stats:
        steps = stats.get("denoising_steps") or 0
        line += f", NFE {stats.get('nfe')}, {steps} denoising steps"
        if steps:
            line += f", {usage.completion_tokens / steps:.2f} tokens per step"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="tiny-sdar")
    parser.add_argument("--prompt", default="Write a haiku about diffusion models.")
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--xargs", default='{"algorithm": "low_confidence_dynamic", "threshold": 0.001}',
                        help="decoding knobs (JSON) sent as vllm_xargs; the tiny weights are random, so a "
                        "low threshold lets a step commit several tokens")
    parser.add_argument("--wait", type=float, default=0.0, help="seconds to wait for /health first")
    args = parser.parse_args()
    if args.wait:
        wait_healthy(args.base_url, args.wait)
    client = OpenAI(base_url=args.base_url, api_key="unused")
    body = {"vllm_xargs": json.loads(args.xargs), "return_token_ids": True}

    out = client.completions.create(
        model=args.model, prompt=args.prompt, max_tokens=args.max_tokens, temperature=0.0, extra_body=body
    )
    choice = out.choices[0]
    describe("completion", choice.text, (choice.model_extra or {}).get("token_ids"), out.usage, out.model_extra or {})

    out = client.chat.completions.create(
        model=args.model, messages=[{"role": "user", "content": args.prompt}],
        max_tokens=args.max_tokens, temperature=0.0, extra_body=body,
    )
    choice = out.choices[0]
    describe("chat", choice.message.content or "", (choice.model_extra or {}).get("token_ids"), out.usage, out.model_extra or {})


if __name__ == "__main__":
    main()
