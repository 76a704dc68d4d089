"""Held-out prompts through a served dLLM and its autoregressive twin, side by side.

Both servers are vLLM's OpenAI server (`scripts/run.sh` starts them): the dLLM with this
plugin, the AR twin stock. Each prompt goes as a chat request at temperature 0; the answers
are compared with the held-out answer, and the dLLM's model forwards (NFE) come from the
response's `kv_transfer_params["dllm"]`. An autoregressive server runs one forward per
output token (the prefill forward gives the first), so its forwards = its output tokens.

    python examples/compare_ar.py --dllm http://127.0.0.1:8001/v1 --ar http://127.0.0.1:8002/v1 \
        --heldout checkpoints/heldout.jsonl --count 6
"""
from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from openai import OpenAI


@dataclass
class Answer:
    text: str
    tokens: int
    forwards: int | None  # None: the server does not report it (stock AR: = tokens)


def ask(client: OpenAI, model: str, prompt: str, max_tokens: int) -> Answer:
    out = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0.0,
    )
    stats = ((out.model_extra or {}).get("kv_transfer_params") or {}).get("dllm") or {}
    text = (out.choices[0].message.content or "").strip()
    return Answer(text=text, tokens=out.usage.completion_tokens, forwards=stats.get("nfe"))


def run_all(base_url: str, prompts: list[str], max_tokens: int) -> tuple[list[Answer], float]:
    """All prompts at once (the server batches them); returns the answers and the wall time."""
    client = OpenAI(base_url=base_url, api_key="unused")
    model = client.models.list().data[0].id
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(prompts)) as pool:
        answers = list(pool.map(lambda p: ask(client, model, p, max_tokens), prompts))
    return answers, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dllm", required=True, help="base URL of the dLLM server (…/v1)")
    parser.add_argument("--ar", required=True, help="base URL of the AR twin's server (…/v1)")
    parser.add_argument("--heldout", default="checkpoints/heldout.jsonl")
    parser.add_argument("--count", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=24)
    args = parser.parse_args()
    with open(args.heldout) as f:
        examples = [json.loads(line) for line, _ in zip(f, range(args.count))]
    prompts = [e["prompt"] for e in examples]
    for url in (args.dllm, args.ar):  # NOTE: a fresh server's first batch pays one-time warm-up
        run_all(url, prompts, args.max_tokens)
    dllm, dllm_s = run_all(args.dllm, prompts, args.max_tokens)
    ar, ar_s = run_all(args.ar, prompts, args.max_tokens)
    for e, d, a in zip(examples, dllm, ar):
        print(f"\n{e['prompt']}\n  expected  {e['answer']}")
        print(f"  dLLM      {d.text}  [{'ok' if d.text == e['answer'] else 'WRONG'}] "
              f"{d.tokens} tokens in {d.forwards} forwards ({d.tokens / max(d.forwards or 1, 1):.1f} per forward)")
        print(f"  AR twin   {a.text}  [{'ok' if a.text == e['answer'] else 'WRONG'}] "
              f"{a.tokens} tokens in {a.tokens} forwards (1.0 per forward)")
    d_tokens, a_tokens = sum(d.tokens for d in dllm), sum(a.tokens for a in ar)
    d_fwd = sum(d.forwards or 0 for d in dllm)
    print(f"\n{len(examples)} prompts, sent at once to each server (after one warm-up round):")
    print(f"  dLLM:    {sum(d.text == e['answer'] for d, e in zip(dllm, examples))}/{len(examples)} exact, "
          f"{d_tokens} tokens in {d_fwd} forwards ({d_tokens / max(d_fwd, 1):.2f} per forward), {dllm_s:.2f} s")
    print(f"  AR twin: {sum(a.text == e['answer'] for a, e in zip(ar, examples))}/{len(examples)} exact, "
          f"{a_tokens} tokens in {a_tokens} forwards (1.00 per forward), {ar_s:.2f} s")


if __name__ == "__main__":
    main()
