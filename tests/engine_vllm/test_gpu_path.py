"""The GPU path of the vLLM adapter: runner / worker composition, the config hook on CUDA, the step's host traffic.

Runs here without a GPU: the classes are checked by their MRO, the hook by calling it on
a real `VllmConfig` with `vllm.platforms.current_platform` replaced by a stand-in, and the
runner's ParamBatch cache and single device->host transfer on hand-built groups. The
end-to-end parity test (`pytest.mark.gpu`) serves tiny SDAR and LLaDA checkpoints on a GPU
and compares greedy token ids with the reference generator; it is skipped unless CUDA and
a CUDA build of vLLM are present.
"""
from __future__ import annotations

import copy
import os

import pytest
import torch

pytest.importorskip("vllm")

from dllm_backend.core import policies  # noqa: E402
from dllm_backend.core.policies.base import BlockState, DecodeConfig, StepOutput  # noqa: E402
from dllm_backend.core.tiny import make_tiny  # noqa: E402
from dllm_backend.vllm_adapter import config_hook, runner, worker  # noqa: E402

pytestmark = [pytest.mark.vllm]

V2_ENV = config_hook.V2_RUNNER_ENV
MIXIN_METHODS = ["initialize_kv_cache", "_update_states", "_prepare_inputs", "sample_tokens"]


# ----- composition -----
def test_gpu_runner_is_the_v1_gpu_runner_with_the_mixin_first():
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    mro = runner.DllmGPUModelRunner.__mro__
    assert mro[1:3] == (runner.DllmRunnerMixin, GPUModelRunner)
    for name in MIXIN_METHODS:
        assert getattr(runner.DllmGPUModelRunner, name) is getattr(runner.DllmRunnerMixin, name)
        assert getattr(runner.DllmGPUModelRunner, name) is not getattr(GPUModelRunner, name)


def test_cpu_runner_is_the_same_mixin_over_the_cpu_runner():
    from vllm.v1.worker.cpu_model_runner import CPUModelRunner
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    mro = runner.DllmCPUModelRunner.__mro__
    assert mro[1:3] == (runner.DllmRunnerMixin, CPUModelRunner)
    assert mro.index(CPUModelRunner) < mro.index(GPUModelRunner)
    for name in MIXIN_METHODS:
        assert getattr(runner.DllmCPUModelRunner, name) is getattr(runner.DllmRunnerMixin, name)


def test_gpu_worker_makes_the_dllm_runner_and_refuses_v2(monkeypatch):
    from vllm.v1.worker.gpu_worker import Worker

    assert issubclass(worker.DllmGPUWorker, Worker)
    assert worker.DllmGPUWorker._make_model_runner is not Worker._make_model_runner
    built = []
    monkeypatch.setattr(worker, "DllmGPUModelRunner", lambda cfg, dev: built.append((cfg, dev)) or "runner")

    class Stand:  # the attributes `_make_model_runner` reads from the worker
        vllm_config, device, use_v2_model_runner = "cfg", "cuda:0", False

    assert worker.DllmGPUWorker._make_model_runner(Stand()) == "runner"
    assert built == [("cfg", "cuda:0")]
    Stand.use_v2_model_runner = True
    with pytest.raises(ValueError, match=V2_ENV):
        worker.DllmGPUWorker._make_model_runner(Stand())


def test_both_workers_report_live_requests():
    assert worker.DllmGPUWorker.dllm_live_requests is worker.DllmCPUWorker.dllm_live_requests


# ----- the config hook -----
class _Platform:
    """A stand-in for `vllm.platforms.current_platform`: what the hook asks of it."""

    def __init__(self, name: str) -> None:
        self.device_name = name

    def is_cpu(self) -> bool:
        return self.device_name == "cpu"

    def is_cuda(self) -> bool:
        return self.device_name == "cuda"


@pytest.fixture(scope="module")
def built_config(tmp_path_factory):
    """A VllmConfig of a tiny SDAR checkpoint, built on this (CPU) machine."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm.engine.arg_utils import EngineArgs

    from dllm_backend.vllm_adapter.plugin import register

    register()
    checkpoint = make_tiny("SDARForCausalLM", tmp_path_factory.mktemp("sdar"), seed=0)
    return EngineArgs(
        model=str(checkpoint), dtype="float32", max_model_len=256, max_num_batched_tokens=256, max_num_seqs=8,
    ).create_engine_config()


@pytest.fixture
def fresh(built_config, monkeypatch):
    """A copy with the settings the hook decides reset to vLLM's defaults (before its hooks)."""
    cfg = copy.deepcopy(built_config)
    cfg.parallel_config.worker_cls = "auto"
    cfg.scheduler_config.scheduler_cls = None
    cfg.scheduler_config.async_scheduling = True
    cfg.cache_config.enable_prefix_caching = True
    cfg.compilation_config.cudagraph_mode = None
    cfg.attention_config.use_non_causal = False
    cfg.attention_config.backend = None
    monkeypatch.delenv(V2_ENV, raising=False)  # restored after the test
    return cfg


def _run_hook(monkeypatch, cfg, platform: str) -> None:
    import vllm.platforms

    monkeypatch.setattr(vllm.platforms, "current_platform", _Platform(platform))
    config_hook.DllmConfigHook.verify_and_update_config(cfg)


def test_hook_on_cuda_picks_gpu_worker_v1_runner_piecewise_graphs(fresh, monkeypatch):
    from vllm.config import CUDAGraphMode

    _run_hook(monkeypatch, fresh, "cuda")
    assert fresh.parallel_config.worker_cls == "dllm_backend.vllm_adapter.worker.DllmGPUWorker"
    assert fresh.scheduler_config.scheduler_cls == "dllm_backend.vllm_adapter.scheduler.DllmScheduler"
    assert os.environ[V2_ENV] == "0"
    assert fresh.use_v2_model_runner is False
    assert fresh.compilation_config.cudagraph_mode == CUDAGraphMode.PIECEWISE
    assert fresh.attention_config.use_non_causal is True
    assert fresh.scheduler_config.async_scheduling is False
    assert fresh.cache_config.enable_prefix_caching is False


def test_hook_on_cuda_keeps_eager_and_a_listed_backend(fresh, monkeypatch):
    from vllm.config import CUDAGraphMode
    from vllm.v1.attention.backends.registry import AttentionBackendEnum

    fresh.compilation_config.cudagraph_mode = CUDAGraphMode.NONE
    fresh.attention_config.backend = AttentionBackendEnum.TRITON_ATTN
    _run_hook(monkeypatch, fresh, "cuda")
    assert fresh.compilation_config.cudagraph_mode == CUDAGraphMode.NONE
    assert fresh.attention_config.backend == AttentionBackendEnum.TRITON_ATTN


@pytest.mark.parametrize("mode", ["FULL", "FULL_AND_PIECEWISE", "FULL_DECODE_ONLY"])
def test_hook_on_cuda_refuses_full_graphs_naming_the_mode(fresh, monkeypatch, mode):
    from vllm.config import CUDAGraphMode

    fresh.compilation_config.cudagraph_mode = CUDAGraphMode[mode]
    with pytest.raises(ValueError, match=f"cudagraph_mode {mode} .*valid choices: PIECEWISE, NONE"):
        _run_hook(monkeypatch, fresh, "cuda")


def test_hook_on_cuda_refuses_an_unlisted_backend_naming_it(fresh, monkeypatch):
    from vllm.v1.attention.backends.registry import AttentionBackendEnum

    fresh.attention_config.backend = AttentionBackendEnum.FLASHINFER
    with pytest.raises(ValueError, match="'FLASHINFER'.*FLASH_ATTN, FLEX_ATTENTION, TRITON_ATTN"):
        _run_hook(monkeypatch, fresh, "cuda")


def test_hook_on_cuda_refuses_an_explicit_v2_runner(fresh, monkeypatch):
    monkeypatch.setenv(V2_ENV, "1")
    with pytest.raises(ValueError, match=f"{V2_ENV}='1'"):
        _run_hook(monkeypatch, fresh, "cuda")


def test_hook_keeps_a_user_worker(fresh, monkeypatch):
    fresh.parallel_config.worker_cls = "my.Worker"
    _run_hook(monkeypatch, fresh, "cuda")
    assert fresh.parallel_config.worker_cls == "my.Worker"


def test_hook_on_cpu_is_unchanged(fresh, monkeypatch):
    _run_hook(monkeypatch, fresh, "cpu")
    assert fresh.parallel_config.worker_cls == "dllm_backend.vllm_adapter.worker.DllmCPUWorker"
    assert fresh.compilation_config.cudagraph_mode is None  # left to vLLM's CPU platform
    assert fresh.attention_config.use_non_causal is False
    assert V2_ENV not in os.environ
    assert (fresh.scheduler_config.async_scheduling, fresh.cache_config.enable_prefix_caching) == (False, False)


def test_hook_refuses_other_platforms_listing_the_valid_ones(fresh, monkeypatch):
    with pytest.raises(ValueError, match="unknown platform 'rocm'; valid choices: cpu, cuda"):
        _run_hook(monkeypatch, fresh, "rocm")


# ----- the step's host traffic -----
class _Runner(runner.DllmRunnerMixin):
    """The mixin without a vLLM runner under it: enough for its ParamBatch cache and `_to_host`."""

    def __init__(self) -> None:  # NOTE: no engine: only the fields these methods read
        self.device = torch.device("cpu")
        self._params = {}

        class Spec:
            eos_ids = (2,)

        self.dllm = Spec()


class _Block:
    def __init__(self, decode: DecodeConfig) -> None:
        self.decode = decode


def test_param_batch_is_reused_per_batch_composition():
    r = _Runner()
    a, b = _Block(DecodeConfig("low_confidence", steps=2)), _Block(DecodeConfig("threshold", threshold=0.3))
    entries = [("a", 0, 0), ("b", 1, 4)]
    used: dict = {}
    first = r._param_batch(entries, [a, b], used)
    assert first.algorithms == ("low_confidence", "threshold")
    r._params = used
    assert r._param_batch(entries, [a, b], {}) is first  # same requests, same configs
    assert r._param_batch(entries[:1], [a], {}) is not first  # the composition changed
    assert r._param_batch([("c", 0, 0), ("b", 1, 4)], [a, b], {}) is not first  # another request


def _group(tokens: list[list[int]], done: list[bool]) -> runner._Group:
    t = torch.tensor(tokens)
    out = StepOutput(tokens=t, committed=torch.zeros_like(t, dtype=torch.bool), done=torch.tensor(done))
    state = BlockState(t, t > 0, *(torch.zeros(len(tokens), dtype=torch.long) for _ in range(4)))
    return runner._Group([], [], state, out)


def test_one_device_to_host_copy_per_step(monkeypatch):
    calls = []
    tolist = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda self: calls.append(self.shape) or tolist(self))
    groups = [_group([[5, 6, 7, 8], [9, 10, 11, 12]], [True, False]), _group([[1, 2]], [False])]
    windows, ar = _Runner()._to_host(groups, torch.tensor([42, 43]))
    assert windows == [([[5, 6, 7, 8], [9, 10, 11, 12]], [True, False]), ([[1, 2]], [False])]
    assert ar == [42, 43]
    assert calls == [torch.Size([8 + 2 + 2 + 1 + 2])]  # one flat copy of everything
    assert _Runner()._to_host([], None) == ([], [])
    assert len(calls) == 1  # nothing to read back: no copy


def test_block_state_moves_to_the_runner_device_whole():
    state = policies.new_block_state(
        torch.tensor([[7, 0, 0]]), torch.tensor([[False, True, True]]),
        policies.ParamBatch.from_configs([DecodeConfig("credit", threshold=0.5)], (2,), "cpu"),
        0, torch.tensor([2]), torch.tensor([0]),
    )
    moved = runner.on_device(state, torch.device("meta"))
    assert {t.device.type for t in (moved.tokens, moved.editable, moved.step, moved.rng_offset)} == {"meta"}
    assert set(moved.extra) == set(state.extra) and all(v.device.type == "meta" for v in moved.extra.values())


# ----- end to end on a GPU -----
def _has_cuda_vllm() -> bool:
    if not torch.cuda.is_available():
        return False
    from vllm.platforms import current_platform

    return current_platform.is_cuda()


PROMPTS = [[100], [5, 17, 300], [9, 8, 7, 6], [40, 41, 42, 43, 44, 45, 46], list(range(7, 18))]
MAX_TOKENS = 10
# (architecture, attention backend, enforce_eager, request knobs); float32 needs a backend
# with float32 kernels (FLASH_ATTN has none)
GPU_CASES = [
    ("SDARForCausalLM", "TRITON_ATTN", True, {"algorithm": "low_confidence_dynamic", "threshold": 0.001}),
    ("SDARForCausalLM", "TRITON_ATTN", False, {"algorithm": "low_confidence", "steps": 2}),
    ("SDARForCausalLM", "FLEX_ATTENTION", True, {"algorithm": "low_confidence", "steps": 2}),
    ("LLaDAModelLM", "TRITON_ATTN", False, {"algorithm": "low_confidence", "steps": 2, "block_size": 4}),
    ("LLaDAModelLM", "TRITON_ATTN", True,
     {"algorithm": "threshold", "threshold": 0.001, "block_size": 4, "cache_mode": "dual"}),
]


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(not _has_cuda_vllm(), reason="needs a CUDA GPU and a CUDA build of vLLM")
@pytest.mark.parametrize(("arch", "backend", "eager", "knobs"), GPU_CASES, ids=lambda v: str(v))
def test_gpu_token_ids_equal_reference(tmp_path, arch, backend, eager, knobs):
    from vllm import LLM, SamplingParams, envs
    from vllm.inputs import TokensPrompt

    from dllm_backend.core.reference.generators import GenerationRequest, generate
    from dllm_backend.core.reference.loading import load_reference

    os.environ[V2_ENV] = "0"
    envs.disable_envs_cache()  # an earlier in-process engine may have cached the variable unset
    checkpoint = make_tiny(arch, tmp_path / arch, seed=0)
    loaded = load_reference(checkpoint)
    decode = {k: v for k, v in knobs.items() if k not in ("block_size", "cache_mode")}
    request_opts = {k: knobs[k] for k in ("block_size", "cache_mode") if k in knobs}
    ref = [
        generate(loaded, GenerationRequest(tuple(p), MAX_TOKENS, DecodeConfig(**decode), **request_opts)).token_ids
        for p in PROMPTS
    ]
    llm = LLM(
        model=str(checkpoint), dtype="float32", max_model_len=256, max_num_batched_tokens=256, max_num_seqs=8,
        seed=0, enforce_eager=eager, attention_backend=backend, gpu_memory_utilization=0.3,
    )
    try:
        assert llm.llm_engine.vllm_config.use_v2_model_runner is False
        params = SamplingParams(temperature=0.0, max_tokens=MAX_TOKENS, extra_args=dict(knobs))
        outs = llm.generate([TokensPrompt(prompt_token_ids=p) for p in PROMPTS], params, use_tqdm=False)
        assert [list(o.outputs[0].token_ids) for o in outs] == ref
    finally:
        del llm
        torch.cuda.empty_cache()
