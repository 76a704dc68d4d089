"""The `vllm.general_plugins` entry point: registers the dLLM architectures with vLLM.

`register()` runs in every vLLM process (front end, engine core, workers); it is cheap
and idempotent. It registers:
- each served architecture with `ModelRegistry.register_model(arch, "module:Class")`
  (lazy strings: nothing model-related is imported until vLLM builds the model);
- the families' transformers config classes (`core.configs.register_configs()`), so
  checkpoints with an `auto_map` load without `trust_remote_code`;
- a per-architecture config hook in `MODELS_CONFIG_MAP`, the table vLLM itself uses for
  architecture-specific settings (`VllmConfig.__post_init__` ->
  `try_verify_and_update_config`): when a dLLM architecture is served it selects the
  denoising scheduler and worker (`config_hook.DllmConfigHook`). Other models are untouched.
"""
from __future__ import annotations

_MODELS = "dllm_backend.vllm_adapter.models"

# architecture -> lazy "module:Class" of its vLLM model (each checked against its reference
# network in tests/engine_vllm/test_models_numerics.py); whether a family's decoding path is
# served is the config hook's / ServeSpec's decision.
VLLM_MODELS: dict[str, str] = {
    "SDARForCausalLM": f"{_MODELS}.sdar:SDARForCausalLM",
    "SDARMoeForCausalLM": f"{_MODELS}.sdar_moe:SDARMoeForCausalLM",
    "LLaDA2MoeModelLM": f"{_MODELS}.llada2:LLaDA2MoeModelLM",
    "Fast_dLLM_QwenForCausalLM": f"{_MODELS}.fast_dllm:Fast_dLLM_QwenForCausalLM",
    "LLaDAModelLM": f"{_MODELS}.llada:LLaDAModelLM",
    "LLaDAMoEModelLM": f"{_MODELS}.llada_moe:LLaDAMoEModelLM",
    "DreamModel": f"{_MODELS}.dream:DreamModel",
}

_registered = False


def register() -> None:
    """Registers models, configs and the config hook (idempotent)."""
    global _registered
    if _registered:
        return
    from vllm import ModelRegistry
    from vllm.model_executor.models.config import MODELS_CONFIG_MAP

    from ..core.configs import register_configs
    from .config_hook import DllmConfigHook

    register_configs()
    for arch, target in VLLM_MODELS.items():
        if arch not in ModelRegistry.get_supported_archs():
            ModelRegistry.register_model(arch, target)
        MODELS_CONFIG_MAP.setdefault(arch, DllmConfigHook)
    _registered = True
