"""The workers of a served dLLM: vLLM's CPU and GPU workers with the denoising model runners.

`CPUWorker.init_device` builds its model runner inline (no factory method to override),
so the CPU worker swaps the runner right after it; the GPU worker overrides the factory
`Worker._make_model_runner`. Both refuse Model Runner V2, which the dLLM runners do not
extend (the config hook selects V1 through `VLLM_USE_V2_MODEL_RUNNER=0`).
"""
from __future__ import annotations

import torch
from vllm.v1.worker.cpu_worker import CPUWorker
from vllm.v1.worker.gpu_worker import Worker

from .runner import DllmCPUModelRunner, DllmGPUModelRunner

V1_ONLY = "the dllm_backend adapter needs the V1 model runner (VLLM_USE_V2_MODEL_RUNNER=0)"


class _LiveRequests:
    """What both workers expose to `collective_rpc` besides vLLM's own methods."""

    def dllm_live_requests(self) -> dict[str, int]:
        """Per-request denoising state the runner holds (for leak checks via collective_rpc)."""
        runner = self.model_runner
        return {"blocks": len(runner._blocks), "step_counters": len(runner._steps_done), "settings": len(runner._settings)}


class DllmCPUWorker(_LiveRequests, CPUWorker):
    """vLLM's CPU worker running `DllmCPUModelRunner`."""

    def init_device(self) -> None:
        if self.use_v2_model_runner:
            raise ValueError(V1_ONLY)
        super().init_device()
        # NOTE: the stock runner built above is dropped before any model or KV cache exists
        self.model_runner = DllmCPUModelRunner(self.vllm_config, torch.device("cpu"))


class DllmGPUWorker(_LiveRequests, Worker):
    """vLLM's GPU worker running `DllmGPUModelRunner` (the V1 runner)."""

    def _make_model_runner(self) -> DllmGPUModelRunner:
        if self.use_v2_model_runner:
            raise ValueError(V1_ONLY)
        return DllmGPUModelRunner(self.vllm_config, self.device)
