"""The `sglang.srt.plugins` entry point (`register`): our dLLM families and algorithms in SGLang.

Pinned to sglang 0.5.23: the dLLM internals it plugs into change between releases (the
config function alone has dozens of revisions). `register()` runs in every SGLang process
(launcher, engine, schedulers, detokenizer); it is idempotent and cheap: it imports no
SGLang module itself and defers each registration until SGLang imports the target module
(`lazy_import.when_imported`).

Patch ledger (one entry per change to SGLang's behaviour; each has a test in
tests/engine_sglang/ that fails when the upstream shape changes):
1. `sglang.srt.dllm.config.DllmConfig.from_server_args`, AROUND hook through SGLang's
   `HookRegistry` (`config_hook.from_server_args_hook`). Why: block size and mask id live
   in a dict local to that function and unknown architectures raise. How: the original runs
   first; only its "Unknown diffusion LLM" for one of our architectures is replaced by a
   config built from our family specs. Remove when SGLang offers a registry for dLLM
   parameters (roadmap sglang#39499).
2. `sglang.srt.dllm.algorithm.algo_name_to_cls`: our classes added (no replacement of
   SGLang's names). Why: the table is filled only from SGLang's own package. Remove when
   algorithms can come from plugins.
3. `sglang.srt.models.registry.ModelRegistry.register("dllm_backend.sglang_adapter.models")`:
   the public API, no patch; deferred only to avoid importing every SGLang model early.
"""
from __future__ import annotations

from types import ModuleType

from .lazy_import import when_imported

CONFIG_TARGET = "sglang.srt.dllm.config.DllmConfig.from_server_args"
MODELS_PACKAGE = "dllm_backend.sglang_adapter.models"

_registered = False


def register() -> None:
    """Entry point: registers configs, the dLLM config hook, algorithms and models (idempotent)."""
    global _registered
    if _registered:
        return
    from ..core.configs import register_configs

    register_configs()
    when_imported("sglang.srt.dllm.config", _hook_dllm_config)
    when_imported("sglang.srt.dllm.algorithm", _add_algorithms)
    when_imported("sglang.srt.models.registry", _add_models)
    _registered = True


def _hook_dllm_config(_module: ModuleType) -> None:
    from sglang.srt.plugins.hook_registry import HookRegistry, HookType

    from .config_hook import from_server_args_hook

    if CONFIG_TARGET not in HookRegistry._patched:
        HookRegistry.register(CONFIG_TARGET, from_server_args_hook, HookType.AROUND)
        # load_plugins applies hooks after every plugin ran; a deferred registration must
        # apply itself (apply_hooks skips targets already patched)
        HookRegistry.apply_hooks()


def _add_algorithms(module: ModuleType) -> None:
    from .algorithm import register_algorithms

    register_algorithms(module.algo_name_to_cls)


def _add_models(module: ModuleType) -> None:
    from .models import SGLANG_MODELS

    registry = module.ModelRegistry
    if not all(arch in registry.models for arch in SGLANG_MODELS):
        registry.register(MODELS_PACKAGE)
