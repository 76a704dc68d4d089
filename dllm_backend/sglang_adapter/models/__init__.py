"""SGLang model classes of our dLLM families, built from SGLang's own Llama / Qwen2 layers.

SGLang's `ModelRegistry.register(package)` imports every module here and keys each
`EntryClass` by its class name (= the checkpoint's `architectures[0]`). `SGLANG_MODELS`
lists them for the plugin and the tests without importing SGLang.
"""
from __future__ import annotations

SGLANG_MODELS: dict[str, str] = {
    "DreamModel": f"{__name__}.qwen2_family:DreamModel",
    "Fast_dLLM_QwenForCausalLM": f"{__name__}.qwen2_family:Fast_dLLM_QwenForCausalLM",
    "LLaDAModelLM": f"{__name__}.llada:LLaDAModelLM",
    "LLaDAMoEModelLM": f"{__name__}.llada_moe:LLaDAMoEModelLM",
}
