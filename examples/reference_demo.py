"""Builds tiny checkpoints of every family and decodes one prompt with each reference generator.

The weights are random, so the text is gibberish; what the demo shows is the machinery:
the family's decoding loop, how many denoising steps it took and how many tokens each
step committed.  Run it through `scripts/run.sh` (it sets up the environment first).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from dllm_backend.cli import main as cli_main
from dllm_backend.core.tiny import TINY_ARCHITECTURES, make_tiny

# (architecture, extra CLI flags): a threshold low enough that random weights commit
# several tokens per step, and fixed schedules elsewhere.
RUNS: list[tuple[str, list[str]]] = [
    ("LLaDAModelLM", ["--algorithm", "low_confidence", "--block-size", "8", "--steps", "4"]),
    ("LLaDAModelLM", ["--algorithm", "threshold", "--threshold", "0.001", "--block-size", "8", "--cache-mode", "dual"]),
    ("DreamModel", ["--algorithm", "entropy", "--steps", "8"]),
    ("SDARForCausalLM", ["--algorithm", "low_confidence_dynamic", "--threshold", "0.001"]),
    ("LLaDA2MoeModelLM", ["--algorithm", "low_confidence_dynamic"]),
    ("Fast_dLLM_QwenForCausalLM", []),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache", default=".cache/tiny", help="where the tiny checkpoints are written")
    parser.add_argument("--prompt", default="Write a haiku about diffusion models.")
    args = parser.parse_args()
    for arch, flags in RUNS:
        out = Path(args.cache) / arch
        if not (out / "config.json").is_file():
            make_tiny(arch, out, seed=0)
        print(f"\n$ dllm-backend generate {out} --prompt {args.prompt!r} --max-tokens 16 {' '.join(flags)}")
        cli_main(["generate", str(out), "--prompt", args.prompt, "--max-tokens", "16", *flags])
    print(f"\n(tiny checkpoints of {', '.join(TINY_ARCHITECTURES)} live under {args.cache})")


if __name__ == "__main__":
    main()
