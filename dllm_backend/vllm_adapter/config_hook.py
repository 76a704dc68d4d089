"""Engine settings a dLLM needs, applied by vLLM's per-architecture config hook.

`DllmConfigHook.verify_and_update_config` is called from `VllmConfig.__post_init__`
(`try_verify_and_update_config`, before the platform hook) only for the architectures the
plugin put in `MODELS_CONFIG_MAP`. Explicit user choices of scheduler / worker classes win.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from vllm.model_executor.models.config import VerifyAndUpdateConfig

if TYPE_CHECKING:
    from vllm.config import VllmConfig

SCHEDULER_CLS = "dllm_backend.vllm_adapter.scheduler.DllmScheduler"
CPU_WORKER_CLS = "dllm_backend.vllm_adapter.worker.DllmCPUWorker"


class DllmConfigHook(VerifyAndUpdateConfig):
    @staticmethod
    def verify_and_update_config(vllm_config: "VllmConfig") -> None:
        from vllm.platforms import current_platform

        from .serve_spec import ServeSpec
        from .validator import validator_for

        model_config = vllm_config.model_config
        spec = ServeSpec.from_vllm_config(vllm_config)
        if not current_platform.is_cpu():
            raise ValueError(
                f"the dllm_backend vLLM adapter runs on the CPU platform only for now; "
                f"got platform {current_platform.device_name!r}"
            )
        sched = vllm_config.scheduler_config
        par = vllm_config.parallel_config
        if sched.scheduler_cls is None:
            sched.scheduler_cls = SCHEDULER_CLS
        if par.worker_cls == "auto":
            par.worker_cls = CPU_WORKER_CLS
        # NOTE: the block update must reach the scheduler before the next schedule(), so
        # no async scheduling; committed KV depends on block alignment, so no prefix cache.
        sched.async_scheduling = False
        vllm_config.cache_config.enable_prefix_caching = False
        spec.check_token_budget(sched.max_num_batched_tokens, model_config.max_model_len)
        # per-request decoding knobs are checked in the front end, before admission
        # (bound to the served checkpoint and its server-wide defaults)
        procs = list(model_config.logits_processors or [])
        validator = validator_for(spec.family.spec.architecture, spec.served)
        if validator not in procs:
            model_config.logits_processors = procs + [validator]
