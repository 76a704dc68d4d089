"""Engine settings a dLLM needs, applied by vLLM's per-architecture config hook.

`DllmConfigHook.verify_and_update_config` is called from `VllmConfig.__post_init__`
(`try_verify_and_update_config`, before the platform hook) only for the architectures the
plugin put in `MODELS_CONFIG_MAP`. Explicit user choices of scheduler / worker classes win.

Platforms (`PLATFORMS`): the CPU platform, and CUDA with the V1 GPU model runner. On CUDA
the hook also selects the V1 runner, non-causal attention backends and piecewise CUDA
graphs (see `_cuda`). Other platforms (ROCm, XPU, TPU) are refused by name.

Default canvas (`DefaultCanvas`): a request without max_tokens gets the family's default
output length, as if the checkpoint's generation_config.json had `max_new_tokens`
(patches/README.md: the one vLLM patch).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from vllm.model_executor.models.config import VerifyAndUpdateConfig

from ..core.registry import Registry

if TYPE_CHECKING:
    from vllm.config import VllmConfig

SCHEDULER_CLS = "dllm_backend.vllm_adapter.scheduler.DllmScheduler"
CPU_WORKER_CLS = "dllm_backend.vllm_adapter.worker.DllmCPUWorker"
GPU_WORKER_CLS = "dllm_backend.vllm_adapter.worker.DllmGPUWorker"
V2_RUNNER_ENV = "VLLM_USE_V2_MODEL_RUNNER"
# attention backends whose metadata builders honour a batch-wide causal=False over a paged
# KV cache (FlashInfer's non-causal path is a separate prefill wrapper without DCP / FP8
# support and is left out until it is tested)
CUDA_BACKENDS: frozenset[str] = frozenset({"FLASH_ATTN", "TRITON_ATTN", "FLEX_ATTENTION"})


@dataclass(frozen=True)
class PlatformSettings:
    """The worker a platform runs, and what else the platform needs set."""

    worker_cls: str
    apply: Callable[["VllmConfig"], None]


def _cpu(vllm_config: "VllmConfig") -> None:
    """The CPU runner is V1 only and CPU_ATTN takes non-causal queries: nothing to add."""


def _cuda(vllm_config: "VllmConfig") -> None:
    """V1 GPU runner, a non-causal attention backend, CUDA graphs that leave attention eager."""
    from vllm.config import CUDAGraphMode

    # NOTE: Model Runner V2 (vLLM's default on CUDA) has no runner hook for the policy step;
    # `VllmConfig.use_v2_model_runner` reads only this variable. It is set before the engine
    # core and workers are spawned, so they inherit it.
    requested = os.environ.get(V2_RUNNER_ENV)
    if requested is not None and requested.strip().lower() in ("1", "true"):
        raise ValueError(f"{V2_RUNNER_ENV}={requested!r}: the dllm_backend adapter runs on the V1 model runner only")
    os.environ[V2_RUNNER_ENV] = "0"
    if vllm_config.use_v2_model_runner:
        raise ValueError(
            f"vLLM still selects Model Runner V2 (its environment was read before the plugin set "
            f"{V2_RUNNER_ENV}=0, or a V2-only feature is on); start the process with {V2_RUNNER_ENV}=0"
        )
    attention = vllm_config.attention_config
    backend = attention.backend
    if backend is not None and backend.name not in CUDA_BACKENDS:
        raise ValueError(
            f"attention backend {backend.name!r} is not supported for dLLMs; "
            f"valid choices: {', '.join(sorted(CUDA_BACKENDS))}"
        )
    # every query is non-causal: the default backend order then skips causal-only backends
    attention.use_non_causal = True
    comp = vllm_config.compilation_config
    # NOTE: piecewise graphs leave attention outside the graph, so each step's metadata (the
    # causal=False flag, dual mode's raised seq_lens) is honoured at any query length. Full
    # graphs would replay attention captured for vLLM's uniform decode (query length 1 + drafts
    # of a spec config), a shape the denoising steps (queries of B or the canvas) never have.
    if comp.cudagraph_mode is None:
        comp.cudagraph_mode = CUDAGraphMode.PIECEWISE
    elif comp.cudagraph_mode.has_full_cudagraphs():
        raise ValueError(
            f"cudagraph_mode {comp.cudagraph_mode.name} captures attention in full CUDA graphs, which "
            f"the dLLM attention metadata cannot use; valid choices: PIECEWISE, NONE"
        )


PLATFORMS: Registry[PlatformSettings] = Registry("platform")
PLATFORMS.add("cpu", PlatformSettings(CPU_WORKER_CLS, _cpu))
PLATFORMS.add("cuda", PlatformSettings(GPU_WORKER_CLS, _cuda))


class DefaultCanvas:
    """`ModelConfig.get_diff_sampling_param` of a dLLM: vLLM's, plus `max_tokens` (the family's
    `default_max_tokens`) when neither the checkpoint nor `--override-generation-config` sets it.

    NOTE: vLLM's OpenAI server and `LLM.generate` take a request's missing max_tokens from this
    dict, else from the whole remaining context, which a dLLM would fill with masks. Setting
    `override_generation_config["max_new_tokens"]` instead would also cap requests that ask
    for more (vLLM treats the override as a server-wide limit). An instance attribute, so
    that it pickles with the config into the engine process.
    """

    def __init__(self, model_config: Any, max_tokens: int) -> None:
        self.model_config = model_config
        self.max_tokens = max_tokens

    def __call__(self) -> dict[str, Any]:
        params = type(self.model_config).get_diff_sampling_param(self.model_config)
        params.setdefault("max_tokens", self.max_tokens)
        return params

    @classmethod
    def install(cls, model_config: Any, max_tokens: int) -> None:
        if "max_new_tokens" not in model_config.override_generation_config:
            model_config.get_diff_sampling_param = cls(model_config, max_tokens)


def platform_name(platform: Any) -> str:
    """The `PLATFORMS` key of a vLLM platform ("cuda" is NVIDIA only: ROCm reports its own name)."""
    if platform.is_cpu():
        return "cpu"
    if platform.is_cuda():
        return "cuda"
    return str(platform.device_name)


class DllmConfigHook(VerifyAndUpdateConfig):
    @staticmethod
    def verify_and_update_config(vllm_config: "VllmConfig") -> None:
        from vllm.platforms import current_platform

        from .serve_spec import ServeSpec
        from .validator import validator_for

        model_config = vllm_config.model_config
        spec = ServeSpec.from_vllm_config(vllm_config)
        name = platform_name(current_platform)
        try:
            platform = PLATFORMS.get(name)
        except ValueError as e:
            raise ValueError(f"the dllm_backend vLLM adapter does not run on this platform: {e}") from None
        sched = vllm_config.scheduler_config
        par = vllm_config.parallel_config
        if sched.scheduler_cls is None:
            sched.scheduler_cls = SCHEDULER_CLS
        if par.worker_cls == "auto":
            par.worker_cls = platform.worker_cls
        # NOTE: the block update must reach the scheduler before the next schedule(), so
        # no async scheduling; committed KV depends on block alignment, so no prefix cache.
        sched.async_scheduling = False
        vllm_config.cache_config.enable_prefix_caching = False
        platform.apply(vllm_config)
        spec.check_token_budget(sched.max_num_batched_tokens, model_config.max_model_len)
        DefaultCanvas.install(model_config, spec.family.default_max_tokens)
        # per-request decoding knobs are checked in the front end, before admission
        # (bound to the served checkpoint and its server-wide defaults)
        procs = list(model_config.logits_processors or [])
        validator = validator_for(spec.family.spec.architecture, spec.served)
        if validator not in procs:
            model_config.logits_processors = procs + [validator]
