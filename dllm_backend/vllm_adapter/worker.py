"""The CPU worker of a served dLLM: vLLM's CPU worker with the denoising model runner.

`CPUWorker.init_device` builds its model runner inline (no factory method to override, unlike
the GPU worker's `_make_model_runner`), so this worker swaps the runner right after it.
"""
from __future__ import annotations

import torch
from vllm.v1.worker.cpu_worker import CPUWorker

from .runner import DllmCPUModelRunner


class DllmCPUWorker(CPUWorker):
    def init_device(self) -> None:
        if self.use_v2_model_runner:
            raise ValueError("the dllm_backend adapter needs the V1 model runner (VLLM_USE_V2_MODEL_RUNNER=0)")
        super().init_device()
        # NOTE: the stock runner built above is dropped before any model or KV cache exists
        self.model_runner = DllmCPUModelRunner(self.vllm_config, torch.device("cpu"))

    def dllm_live_requests(self) -> dict[str, int]:
        """Per-request denoising state the runner holds (for leak checks via collective_rpc)."""
        runner = self.model_runner
        return {"blocks": len(runner._blocks), "step_counters": len(runner._steps_done), "settings": len(runner._settings)}
