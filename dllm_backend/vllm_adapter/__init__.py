"""vLLM adapter: serves the dLLM families through vLLM's own scheduler, paged KV cache and batching.

Plugs in only through sanctioned hooks (see `plugin.register`); the denoising itself is the
engine-agnostic `dllm_backend.core.policies`. Modules that import vLLM are imported lazily,
so importing this package does not import vLLM.
"""
