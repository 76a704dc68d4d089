"""SGLang's own loaders find and use the plugin: entry point, algorithm table, dLLM config hook.

The entry point comes from a tiny dist-info written by the test onto sys.path (the real
one is declared in pyproject.toml); `SGLANG_PLUGINS` restricts loading to it, and
`load_plugins()` (SGLang's loader) runs it. Configs are built from a real `ServerArgs`
over tiny checkpoint directories (no weights are read).
"""
from __future__ import annotations

import pytest

pytest.importorskip("sglang")

import importlib  # noqa: E402
import sys  # noqa: E402

from dllm_backend.sglang_adapter.algorithm_names import SGLANG_ALGORITHMS  # noqa: E402
from dllm_backend.sglang_adapter.config_hook import DLLM_ARCHITECTURES  # noqa: E402

ENTRY = "dllm_backend_test"


@pytest.fixture(scope="module")
def plugins_loaded(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    dist = site / "dllm_backend_plugin_test-0.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: dllm-backend-plugin-test\nVersion: 0.0\n")
    (dist / "entry_points.txt").write_text(
        f"[sglang.srt.plugins]\n{ENTRY} = dllm_backend.sglang_adapter.plugin:register\n"
    )
    sys.path.insert(0, str(site))
    mp = pytest.MonkeyPatch()
    mp.setenv("SGLANG_PLUGINS", ENTRY)
    from sglang.srt import plugins

    mp.setattr(plugins, "_plugins_loaded", False)
    found = plugins.load_plugins_by_group(plugins.GENERAL_PLUGINS_GROUP)
    plugins.load_plugins()
    yield found
    mp.undo()
    sys.path.remove(str(site))


def test_entry_point_found_by_sglang_loader(plugins_loaded):
    from dllm_backend.sglang_adapter.plugin import register

    assert list(plugins_loaded) == [ENTRY]
    assert plugins_loaded[ENTRY][0] is register


def test_every_name_resolves_to_its_policy(plugins_loaded):
    from sglang.srt.dllm.algorithm import algo_name_to_cls, get_algorithm_cls

    for name, policy in SGLANG_ALGORITHMS.items():
        cls = get_algorithm_cls(name)
        assert cls.__name__ == name and cls.policy_name == policy
    # SGLang's own algorithms are still there, unchanged
    assert algo_name_to_cls["LowConfidence"].__module__ == "sglang.srt.dllm.algorithm.low_confidence"
    assert algo_name_to_cls["JointThreshold"].__module__ == "sglang.srt.dllm.algorithm.joint_threshold"


def test_every_core_policy_has_an_sglang_name():
    from dllm_backend.core.policies import POLICIES

    assert sorted(SGLANG_ALGORITHMS.get(n) for n in SGLANG_ALGORITHMS.names()) == sorted(POLICIES.names())


def test_register_is_idempotent(plugins_loaded):
    from sglang.srt.dllm.algorithm import algo_name_to_cls
    from sglang.srt.dllm.config import DllmConfig

    from dllm_backend.sglang_adapter import plugin

    before = (dict(algo_name_to_cls), DllmConfig.from_server_args)
    plugin.register()
    plugin._registered = False  # a second process-level call path
    plugin.register()
    assert (dict(algo_name_to_cls), DllmConfig.from_server_args) == before


def _server_args(model_dir, algorithm, yaml_path=None):
    from sglang.srt.server_args import ServerArgs

    return ServerArgs(
        model_path=str(model_dir), dllm_algorithm=algorithm, dllm_algorithm_config=yaml_path,
        skip_tokenizer_init=True,
    )


@pytest.mark.parametrize("arch,block,full", [
    ("LLaDAModelLM", 32, True), ("LLaDAMoEModelLM", 32, True),
    ("DreamModel", 32, True), ("Fast_dLLM_QwenForCausalLM", 32, False),
])
def test_config_accepts_our_architectures(plugins_loaded, tiny_dir, arch, block, full):
    from sglang.srt.dllm.config import DllmConfig

    from dllm_backend.core.families import resolve_dir

    d = tiny_dir(arch)
    fam = resolve_dir(d)
    from sglang.srt.arg_groups.model_override_base import resolving_view

    args = _server_args(d, "Threshold")
    cfg = DllmConfig.from_server_args(args)
    assert (cfg.block_size, cfg.mask_id, cfg.algorithm) == (block, fam.mask_id, "Threshold")
    assert cfg.algorithm_config == {"schedule_over_block": not full, "eos_ids": list(fam.eos_ids)}
    # SGLang's defaults pass through: batch size 1, FDFO as ServerArgs resolved it
    assert cfg.max_running_requests == 1
    assert cfg.first_done_first_out_mode is resolving_view(args).dllm_fdfo


def test_yaml_block_size_and_knobs(plugins_loaded, tiny_dir, tmp_path):
    from sglang.srt.dllm.config import DllmConfig

    y = tmp_path / "algo.yaml"
    y.write_text("block_size: 8\nthreshold: 0.7\n")
    cfg = DllmConfig.from_server_args(_server_args(tiny_dir("LLaDAModelLM"), "Threshold", str(y)))
    assert cfg.block_size == 8 and cfg.algorithm_config["threshold"] == 0.7
    # a block-causal family refuses a block it was not trained with, naming the value
    with pytest.raises(ValueError, match="block_size 8 is not valid"):
        DllmConfig.from_server_args(_server_args(tiny_dir("Fast_dLLM_QwenForCausalLM"), "Threshold", str(y)))


def test_builtin_architectures_unchanged_and_unknown_still_raise(plugins_loaded, tiny_dir, tmp_path):
    import json

    from sglang.srt.dllm.config import DllmConfig

    cfg = DllmConfig.from_server_args(_server_args(tiny_dir("SDARForCausalLM"), "LowConfidence"))
    assert (cfg.block_size, cfg.mask_id, cfg.algorithm_config) == (4, 151669, {})  # SGLang's table
    other = tmp_path / "llama"
    other.mkdir()
    config = json.loads((tiny_dir("SDARForCausalLM") / "config.json").read_text())
    config["architectures"] = ["NotADiffusionLM"]
    (other / "config.json").write_text(json.dumps(config))
    with pytest.raises(RuntimeError, match="Unknown diffusion LLM: NotADiffusionLM"):
        DllmConfig.from_server_args(_server_args(other, "LowConfidence"))


def test_hook_target_shape_is_pinned(plugins_loaded):
    """Fails when SGLang changes the patched function (ledger entry 1)."""
    import inspect

    from sglang.srt.dllm.config import DllmConfig

    original = DllmConfig.from_server_args.__wrapped__
    assert list(inspect.signature(original).parameters) == ["server_args"]
    source = inspect.getsource(original)
    assert 'raise RuntimeError(f"Unknown diffusion LLM: {arch}")' in source
    assert list(inspect.signature(DllmConfig.__init__).parameters)[1:6] == [
        "algorithm", "algorithm_config", "block_size", "mask_id", "max_running_requests",
    ]


def test_validate_request_reports_bad_custom_params(plugins_loaded):
    from types import SimpleNamespace

    from sglang.srt.dllm.algorithm import get_algorithm_cls

    cls = get_algorithm_cls("Threshold")
    ok = SimpleNamespace(sampling_params=SimpleNamespace(custom_params={"dllm": {"threshold": 0.3}}))
    bad = SimpleNamespace(sampling_params=SimpleNamespace(custom_params={"dllm": {"threshold": 2.0}}))
    typo = SimpleNamespace(sampling_params=SimpleNamespace(custom_params={"dllm": {"treshold": 0.3}}))
    assert cls.validate_request(ok) is None
    assert "threshold must be in [0, 1], got 2.0" in cls.validate_request(bad)
    assert "unknown per-request dLLM knob(s) ['treshold']" in cls.validate_request(typo)


def test_models_registered_in_sglang_registry(plugins_loaded):
    from sglang.srt.models.registry import ModelRegistry

    from dllm_backend.sglang_adapter.models import SGLANG_MODELS

    for arch, target in SGLANG_MODELS.items():
        module, _, name = target.partition(":")
        cls, resolved = ModelRegistry.resolve_model_cls([arch])
        assert resolved == arch and cls is getattr(importlib.import_module(module), name)
