"""`dllm-backend` command line: make-tiny, generate (the reference generator) and serve (vLLM)."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any, Callable, Sequence

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return deco


def _decode_fields() -> list[dataclasses.Field]:
    from .core.policies.base import DecodeConfig

    return [f for f in dataclasses.fields(DecodeConfig) if f.name != "algorithm"]


def _add_decode_args(p: argparse.ArgumentParser) -> None:
    """One flag per `DecodeConfig` field, so the CLI never lags behind the config."""
    for f in _decode_fields():
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, action="store_true", default=None)
        else:
            kind = int if "int" in str(f.type) else float
            p.add_argument(flag, type=kind, default=None, metavar=f.name.upper())


def decode_config(args: argparse.Namespace, spec: Any):
    """The flags' `DecodeConfig`, unset knobs from the family (`FamilySpec.decode_knobs`, as the servers)."""
    from .core.policies.base import DecodeConfig

    given = {f.name: getattr(args, f.name) for f in _decode_fields() if getattr(args, f.name) is not None}
    return DecodeConfig(**spec.decode_knobs({"algorithm": args.algorithm, **given}))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dllm-backend", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("make-tiny", help="write a small random checkpoint in a family's exact HF layout")
    p.add_argument("architecture", help="HF architectures[0], e.g. LLaDAModelLM")
    p.add_argument("out_dir")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("generate", help="decode a prompt with the reference generator")
    p.add_argument("model_dir")
    p.add_argument("--prompt", required=True)
    p.add_argument("--algorithm", default=None, help="decoding policy (default: the family's)")
    p.add_argument(
        "--max-tokens", type=int, default=None,
        help="output tokens (default: the checkpoint's generation_config max_new_tokens, else 128)",
    )
    p.add_argument("--block-size", type=int, default=None)
    p.add_argument("--cache-mode", default="exact", help="exact | prefix | dual (full-attention families)")
    p.add_argument("--raw", action="store_true", help="do not apply the chat template")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    _add_decode_args(p)

    p = sub.add_parser(
        "serve", help="serve a checkpoint with vLLM's OpenAI server (the rest of the line goes to vLLM)",
        description="Runs `python -m vllm.entrypoints.openai.api_server --model MODEL_DIR [vLLM args...]` "
        "with CPU defaults (--enforce-eager, VLLM_CPU_KVCACHE_SPACE=1) unless given.",
    )
    p.add_argument("--no-cpu-defaults", action="store_true", help="pass the vLLM arguments exactly as given")
    p.add_argument("model_dir")
    p.add_argument("vllm_args", nargs=argparse.REMAINDER, help="vLLM server arguments, e.g. --port 8000")

    from .bench.cli import add_bench_args, add_train_args

    add_train_args(sub.add_parser("train-tiny", help="train a small LLaDA / SDAR / Qwen3-AR model on the synthetic tasks (CPU or CUDA)"))
    add_bench_args(sub.add_parser("bench", help="accuracy, tokens/s, latency, NFE, plots over a sweep (vLLM engine and reference)"))
    return parser


@command("make-tiny")
def _make_tiny(args: argparse.Namespace) -> int:
    from .core.tiny import make_tiny

    out = make_tiny(args.architecture, args.out_dir, seed=args.seed)
    print(f"wrote a tiny {args.architecture} checkpoint to {out}")
    return 0


def encode_prompt(tokenizer: Any, prompt: str, raw: bool) -> list[int]:
    if not raw and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]


@command("generate")
def _generate(args: argparse.Namespace) -> int:
    from transformers import AutoTokenizer

    from .core.reference.generators import GenerationRequest, generate, validate_request
    from .core.reference.loading import load_reference

    loaded = load_reference(args.model_dir)
    tokenizer = AutoTokenizer.from_pretrained(args.model_dir)
    prompt_ids = encode_prompt(tokenizer, args.prompt, args.raw)
    request = validate_request(loaded, GenerationRequest(
        prompt_ids=tuple(prompt_ids),
        max_tokens=args.max_tokens if args.max_tokens is not None else loaded.family.default_max_tokens,
        decode=decode_config(args, loaded.family.spec),
        block_size=args.block_size,
        cache_mode=args.cache_mode,
    ))
    start = time.perf_counter()
    result = generate(loaded, request)
    seconds = time.perf_counter() - start
    text = tokenizer.decode(result.token_ids, skip_special_tokens=True)
    if args.json:
        print(json.dumps({
            "text": text, "token_ids": result.token_ids, "finish_reason": result.finish_reason,
            "nfe": result.nfe, "steps": result.steps, "tokens_per_step": result.tokens_per_step,
            "prompt_tokens": len(prompt_ids), "seconds": round(seconds, 4),
            "algorithm": request.decode.algorithm, "architecture": loaded.family.spec.architecture,
            "decode": dataclasses.asdict(request.decode), "block_size": request.block_size,
            "max_tokens": request.max_tokens,
        }))
        return 0
    n = len(result.token_ids)
    print(f"{loaded.family.spec.architecture} | {request.decode.algorithm} | {len(prompt_ids)} prompt tokens")
    print(f"text: {text!r}")
    print(
        f"{n} tokens in {result.steps} denoising steps ({n / max(result.steps, 1):.2f} tokens/step), "
        f"{result.nfe} forwards, finish: {result.finish_reason}, {n / seconds:.1f} tokens/s"
    )
    print(f"tokens committed per step: {result.tokens_per_step}")
    return 0


@command("serve")
def _serve(args: argparse.Namespace) -> int:
    from .vllm_adapter.serve import exec_server

    exec_server(args.model_dir, args.vllm_args, cpu_defaults=not args.no_cpu_defaults)
    return 0  # not reached: the process is now vLLM's server


@command("train-tiny")
def _train_tiny(args: argparse.Namespace) -> int:
    from .bench.cli import run_train

    return run_train(args)


@command("bench")
def _bench(args: argparse.Namespace) -> int:
    from .bench.cli import run_bench

    return run_bench(args)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except ValueError as exc:  # bad input: a clear message, no traceback
        print(f"dllm-backend {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
