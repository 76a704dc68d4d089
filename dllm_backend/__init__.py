"""dllm-backend: diffusion language models served by vLLM and SGLang.

`dllm_backend.core` is engine-agnostic (family specs, decoding policies, the
reference networks and generators); the engine adapters import their engine lazily.
"""
from __future__ import annotations

__version__ = "0.1.0"
