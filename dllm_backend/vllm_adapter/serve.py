"""`dllm-backend serve MODEL_DIR [vLLM args...]`: vLLM's OpenAI server with CPU defaults filled in.

It only builds a command line and replaces this process with vLLM's own server; the
plugin (the `vllm.general_plugins` entry point) does the rest, so the plain command

    python -m vllm.entrypoints.openai.api_server --model MODEL_DIR --enforce-eager

serves the same model. Each default applies only when the user did not give that flag
(or environment variable). Engine-free: importing this module does not import vLLM.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Mapping, Sequence

SERVER_MODULE = "vllm.entrypoints.openai.api_server"

# flag -> its arguments when the user gives neither the flag nor its negation
CPU_FLAGS: dict[str, tuple[str, ...]] = {
    # NOTE: torch.compile of the model costs minutes on a few CPU cores and buys little there
    "--enforce-eager": (),
}
# environment variable -> value when unset
CPU_ENV: dict[str, str] = {
    # NOTE: vLLM's CPU backend refuses to start without a KV cache size it can reserve (GiB)
    "VLLM_CPU_KVCACHE_SPACE": "1",
    # the denoising worker runs on the V1 model runner
    "VLLM_USE_V2_MODEL_RUNNER": "0",
}


def _given(flag: str, args: Sequence[str]) -> bool:
    negation = "--no-" + flag[2:]
    return any(a in (flag, negation) or a.startswith(flag + "=") for a in args)


def build_command(
    model_dir: str, vllm_args: Sequence[str], env: Mapping[str, str], cpu_defaults: bool = True
) -> tuple[list[str], dict[str, str]]:
    """argv and environment of the server process; `vllm_args` pass through unchanged."""
    if _given("--model", vllm_args):
        raise ValueError("give the model as MODEL_DIR, not as --model in the vLLM arguments")
    argv = [sys.executable, "-m", SERVER_MODULE, "--model", str(model_dir)]
    out_env = dict(env)
    if cpu_defaults:
        for flag, values in CPU_FLAGS.items():
            if not _given(flag, vllm_args):
                argv += [flag, *values]
        for name, value in CPU_ENV.items():
            out_env.setdefault(name, value)
    return argv + list(vllm_args), out_env


def check_model_dir(model_dir: str) -> None:
    """A local directory must hold a dLLM family the package knows (a clear error before
    vLLM starts); anything else (e.g. a hub id) is left to vLLM."""
    if Path(model_dir).is_dir():
        from ..core.families import resolve_dir

        resolve_dir(model_dir)


def exec_server(model_dir: str, vllm_args: Sequence[str], cpu_defaults: bool = True) -> None:
    """Replaces this process with vLLM's OpenAI server (never returns)."""
    check_model_dir(model_dir)
    argv, env = build_command(model_dir, vllm_args, os.environ, cpu_defaults)
    print("$ " + " ".join(argv), file=sys.stderr, flush=True)
    os.execve(argv[0], argv, env)
