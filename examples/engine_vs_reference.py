"""Wall-clock tokens/s of the vLLM plugin vs the reference generator on the same checkpoint.

Both decode the same prompts with the same algorithm (greedy) and must give the same tokens;
the ratio is measured in one process, one after the other. A benchmark, not a test:

    .venv/bin/python examples/engine_vs_reference.py [--arch SDARForCausalLM] [--prompts 16]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--arch", default="SDARForCausalLM")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--algorithm", default="low_confidence_dynamic")
    parser.add_argument("--threshold", type=float, default=0.001)
    args = parser.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

    import torch
    from vllm import LLM, SamplingParams
    from vllm.inputs import TokensPrompt

    from dllm_backend.core.policies.base import DecodeConfig
    from dllm_backend.core.reference.generators import GenerationRequest, generate
    from dllm_backend.core.reference.loading import load_reference
    from dllm_backend.core.tiny import make_tiny

    ckpt = make_tiny(args.arch, tempfile.mkdtemp(prefix="bench-"), seed=0)
    gen = torch.Generator().manual_seed(0)
    prompts = [torch.randint(10, 1900, (int(n),), generator=gen).tolist()
               for n in torch.randint(4, 40, (args.prompts,), generator=gen)]
    knobs = {"algorithm": args.algorithm, "threshold": args.threshold}

    loaded = load_reference(ckpt)
    t0 = time.perf_counter()
    ref = [generate(loaded, GenerationRequest(tuple(p), args.max_tokens, DecodeConfig(**knobs))) for p in prompts]
    ref_s = time.perf_counter() - t0
    ref_tokens = sum(len(r.token_ids) for r in ref)

    llm = LLM(model=str(ckpt), enforce_eager=True, dtype="float32", max_model_len=256,
              max_num_batched_tokens=2048, max_num_seqs=args.prompts, seed=0)
    params = [SamplingParams(temperature=0.0, max_tokens=args.max_tokens, extra_args=dict(knobs)) for _ in prompts]
    batch = [TokensPrompt(prompt_token_ids=p) for p in prompts]
    llm.generate(batch[:2], params[:2], use_tqdm=False)  # warm-up
    t0 = time.perf_counter()
    outs = llm.generate(batch, params, use_tqdm=False)
    eng_s = time.perf_counter() - t0
    got = [list(o.outputs[0].token_ids) for o in outs]
    eng_tokens = sum(len(g) for g in got)

    same = got == [r.token_ids for r in ref]
    print(f"{args.arch}, {args.prompts} prompts, max_tokens {args.max_tokens}, {knobs}, torch threads {torch.get_num_threads()}")
    print(f"reference (one request at a time): {ref_tokens} tokens in {ref_s:.2f} s = {ref_tokens / ref_s:.1f} tokens/s")
    print(f"vLLM + plugin (batched):           {eng_tokens} tokens in {eng_s:.2f} s = {eng_tokens / eng_s:.1f} tokens/s")
    print(f"ratio {ref_s / eng_s * eng_tokens / ref_tokens:.2f}x, identical tokens: {same}")


if __name__ == "__main__":
    main()
