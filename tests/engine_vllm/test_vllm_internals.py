"""The vLLM 0.32 internals the adapter subclasses or calls, pinned: this fails when one changes shape.

No patch is applied to vLLM (see patches/README.md); the adapter plugs in through the
entry point, `ModelRegistry`, `MODELS_CONFIG_MAP` and scheduler/worker subclasses. The
subclasses override a few private methods, listed here with the parameters they rely on.
"""
from __future__ import annotations

import dataclasses
import inspect

import pytest

pytest.importorskip("vllm")

OVERRIDDEN = [
    # (module, class, method, parameters the override passes through)
    ("vllm.v1.core.sched.scheduler", "Scheduler", "schedule", ["self", "throttle_prefills"]),
    ("vllm.v1.core.sched.scheduler", "Scheduler", "update_from_output",
     ["self", "scheduler_output", "model_runner_output"]),
    ("vllm.v1.core.sched.scheduler", "Scheduler", "add_request", ["self", "request"]),
    ("vllm.v1.core.sched.scheduler", "Scheduler", "_free_request", ["self", "request", "delay_free_blocks"]),
    ("vllm.v1.core.sched.scheduler", "Scheduler", "_preempt_request",
     ["self", "request", "timestamp", "drop_stale_output"]),
    ("vllm.v1.core.sched.scheduler", "Scheduler", "_mamba_block_aligned_split",
     ["self", "request", "num_new_tokens", "num_new_local_computed_tokens", "num_external_computed_tokens"]),
    ("vllm.v1.worker.gpu_model_runner", "GPUModelRunner", "_update_states", ["self", "scheduler_output"]),
    ("vllm.v1.worker.gpu_model_runner", "GPUModelRunner", "_prepare_inputs",
     ["self", "scheduler_output", "num_scheduled_tokens"]),
    ("vllm.v1.worker.gpu_model_runner", "GPUModelRunner", "sample_tokens", ["self", "grammar_output"]),
    ("vllm.v1.worker.cpu_worker", "CPUWorker", "init_device", ["self"]),
    ("vllm.v1.worker.gpu_worker", "Worker", "_make_model_runner", ["self"]),
]


@pytest.mark.parametrize(("module", "cls", "method", "params"), OVERRIDDEN, ids=lambda v: str(v))
def test_overridden_methods_keep_their_shape(module, cls, method, params) -> None:
    import importlib

    target = getattr(getattr(importlib.import_module(module), cls), method)
    assert list(inspect.signature(target).parameters) == params


def test_attention_metadata_still_has_a_causal_flag() -> None:
    # the runner makes every query non-causal by replacing this field before `build`
    from vllm.v1.attention.backend import CommonAttentionMetadata

    fields = {f.name for f in dataclasses.fields(CommonAttentionMetadata)}
    assert "causal" in fields
    # dual cache mode raises a request's seq_lens; the host upper bound must follow
    assert "seq_lens_cpu_upper_bound" in fields
    # block-causal segments replace the per-request fields (virtual_batch.metadata_changes)
    # and must know every per-request field a builder may read
    from dllm_backend.vllm_adapter import virtual_batch

    split = {"query_start_loc", "query_start_loc_cpu", "seq_lens", "num_reqs", "max_query_len", "max_seq_len",
             "block_table_tensor", "req_idx", "seq_lens_cpu_upper_bound", "_num_computed_tokens_cache",
             "_token_to_req_indices_cache"}
    handled = split | set(virtual_batch._PER_REQUEST) | set(virtual_batch._UNSUPPORTED)
    assert handled <= fields
    # per token or batch-wide; or host copies set only together with a refused field
    unaffected = {"num_actual_tokens", "slot_mapping", "causal", "positions", "num_logits_indices",
                  "max_logits_per_req", "encoder_seq_lens_cpu",
                  "dcp_local_seq_lens_cpu_upper_bound"}
    # a new field appears here first: decide whether a split must repeat it per segment
    assert fields - handled - unaffected == set()


def test_scheduler_switches_the_adapter_sets_still_exist() -> None:
    from vllm.model_executor.models.config import MODELS_CONFIG_MAP, VerifyAndUpdateConfig
    from vllm.v1.core.sched.scheduler import Scheduler

    assert isinstance(MODELS_CONFIG_MAP, dict)
    assert hasattr(VerifyAndUpdateConfig, "verify_and_update_config")
    src = inspect.getsource(Scheduler)
    for attr in ("need_mamba_block_aligned_split", "num_sampled_tokens_per_step"):
        assert attr in src, attr


def test_default_max_tokens_still_come_from_get_diff_sampling_param() -> None:
    # `config_hook.DefaultCanvas` replaces this method on the served ModelConfig instance
    # (patches/README.md); the servers and LLM.generate must still read it from there
    import importlib

    from vllm.config import ModelConfig
    from vllm.entrypoints.serve.utils.api_utils import get_max_tokens

    assert list(inspect.signature(ModelConfig.get_diff_sampling_param).parameters) == ["self"]
    for module in ("vllm.entrypoints.openai.completion.serving", "vllm.entrypoints.openai.chat_completion.serving",
                   "vllm.entrypoints.llm"):
        assert "model_config.get_diff_sampling_param()" in inspect.getsource(importlib.import_module(module)), module
    # a request's missing max_tokens falls back to the dict's max_tokens, not capped by it otherwise
    assert get_max_tokens(256, None, 10, {"max_tokens": 128}) == 128
    assert get_max_tokens(256, 200, 10, {"max_tokens": 128}) == 200


def test_default_canvas_is_added_only_when_nothing_sets_it() -> None:
    from dllm_backend.vllm_adapter.config_hook import DefaultCanvas

    class _Config:
        def __init__(self, override: dict, gen: dict) -> None:
            self.override_generation_config, self.gen = override, gen

        def get_diff_sampling_param(self) -> dict:
            return dict(self.gen)

    for override, gen, expected in [({}, {}, 128), ({}, {"max_tokens": 40}, 40), ({"max_new_tokens": None}, {}, None)]:
        config = _Config(override, gen)
        DefaultCanvas.install(config, 128)
        assert config.get_diff_sampling_param().get("max_tokens") == expected
