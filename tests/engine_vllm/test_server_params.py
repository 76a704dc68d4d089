"""Per-request knobs, server-wide defaults, the front-end validator and the `serve` command line.

No engine is started: SamplingParams are plain vLLM objects, the validator is called the
way vLLM's front end calls it.
"""
from __future__ import annotations

import sys

import pytest

pytest.importorskip("vllm")

from vllm import SamplingParams  # noqa: E402
from vllm.exceptions import VLLMValidationError  # noqa: E402

from dllm_backend.cli import build_parser, decode_config as cli_decode_config  # noqa: E402
from dllm_backend.core import policies  # noqa: E402
from dllm_backend.core.limits import DEFAULT_MAX_STEPS, Limits  # noqa: E402
from dllm_backend.core.families import FAMILIES, resolve  # noqa: E402
from dllm_backend.core.configs.llada import TINY_CONFIG as LLADA_TINY  # noqa: E402
from dllm_backend.core.configs.sdar import TINY_CONFIG as SDAR_TINY  # noqa: E402
from dllm_backend.vllm_adapter.decode_params import KnobError, ServedDecoding, decode_config  # noqa: E402
from dllm_backend.vllm_adapter.serve import SERVER_MODULE, build_command  # noqa: E402
from dllm_backend.vllm_adapter.validator import validator_for  # noqa: E402

SDAR = resolve(SDAR_TINY)  # block 4, low_confidence_dynamic tau 0.85
LLADA = resolve(LLADA_TINY)  # full attention, default block 32


def _params(**kw) -> SamplingParams:
    return SamplingParams(**{"temperature": 0.0, "max_tokens": 16, **kw})


def test_family_defaults_then_request_knobs():
    got = ServedDecoding(SDAR).request(_params())
    assert (got.decode.algorithm, got.decode.threshold, got.decode.steps) == ("low_confidence_dynamic", 0.85, None)
    assert (got.block_size, got.cache_mode) == (4, "exact")
    got = ServedDecoding(SDAR).request(_params(temperature=0.7, top_k=5, seed=3, extra_args={"algorithm": "low_confidence", "steps": 2}))
    assert (got.decode.algorithm, got.decode.steps, got.decode.threshold) == ("low_confidence", 2, None)
    assert (got.decode.temperature, got.decode.top_k, got.decode.seed) == (0.7, 5, 3)


def test_server_defaults_sit_between_family_and_request():
    served = ServedDecoding.from_additional_config(SDAR, {"dllm": {"algorithm": "threshold", "threshold": 0.5}})
    assert served.request(_params()).decode.algorithm == "threshold"
    assert served.request(_params()).decode.threshold == 0.5
    assert served.request(_params(extra_args={"threshold": 0.25})).decode.threshold == 0.25
    llada = ServedDecoding.from_additional_config(LLADA, {"dllm": {"block_size": 8, "cache_mode": "dual"}})
    got = llada.request(_params())
    assert (got.block_size, got.cache_mode, got.decode.algorithm) == (8, "dual", "low_confidence")
    assert llada.request(_params(extra_args={"block_size": 16, "cache_mode": "prefix"})).block_size == 16
    assert ServedDecoding.from_additional_config(SDAR, {"other_plugin": 1}).defaults == ()


@pytest.mark.parametrize("section, field", [
    ({"threshold": 2.0}, "threshold"),
    ({"temperature": 0.5}, "temperature"),  # a standard field: vLLM's --override-generation-config
    ({"nope": 1}, "nope"),
    ({"block_size": 8}, "block_size"),
])
def test_bad_server_defaults_fail_at_launch(section, field):
    with pytest.raises(KnobError, match=field) as e:
        ServedDecoding.from_additional_config(SDAR, {"dllm": section})
    assert e.value.field == field
    with pytest.raises(ValueError, match="JSON object"):
        ServedDecoding.from_additional_config(SDAR, {"dllm": "threshold=0.5"})


@pytest.mark.parametrize("extra, field", [
    ({"algorithm": "no_such"}, "algorithm"),
    ({"threshold": 1.5}, "threshold"),
    ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"block_size": 8}, "block_size"),
    ({"threshold": "0.9"}, "threshold"),
    ({"gamma": [1, 2]}, "gamma"),
    ({"no_such_knob": 1}, "no_such_knob"),
    ({"cache_mode": "dual"}, "cache_mode"),
    ({"cfg_scale": 1.5}, "cfg_scale"),
    ({"seed": -1}, "seed"),
])
def test_bad_request_knob_names_its_field(extra, field):
    with pytest.raises(KnobError) as e:
        ServedDecoding(SDAR).request(_params(extra_args=extra))
    assert e.value.field == field and field in str(e.value)


def test_llada_block_sizes_and_cache_modes():
    served = ServedDecoding(LLADA)
    assert served.request(_params(extra_args={"block_size": 8, "cache_mode": "dual"})).block_size == 8
    with pytest.raises(KnobError, match="cache_mode") as e:
        served.request(_params(extra_args={"cache_mode": "fast"}))
    assert e.value.field == "cache_mode"
    with pytest.raises(KnobError) as e:
        served.request(_params(extra_args={"block_size": 0}))
    assert e.value.field == "block_size"


def test_flags_from_json_and_engine_keys_pass():
    # the OpenAI body's vllm_xargs turns JSON true into 1
    got = ServedDecoding(SDAR).request(_params(extra_args={"suppress_eos": 1, "kv_transfer_params": {"x": 1}}))
    assert got.decode.suppress_eos is True
    with pytest.raises(KnobError, match="suppress_eos"):
        ServedDecoding(SDAR).request(_params(extra_args={"suppress_eos": 2}))


def test_unsupported_standard_fields_are_refused():
    for kw, field in [({"logprobs": 1}, "logprobs"), ({"prompt_logprobs": 0}, "prompt_logprobs"),
                      ({"logit_bias": {5: 1.0}}, "logit_bias"), ({"allowed_token_ids": [1, 2]}, "allowed_token_ids")]:
        with pytest.raises(KnobError) as e:
            ServedDecoding(SDAR).request(_params(**kw))
        assert e.value.field == field


def test_request_seed_and_the_seeds_of_its_n_samples():
    served = ServedDecoding(SDAR)
    assert served.request(_params(temperature=1.0, seed=4)).decode.seed == 4
    # vLLM gives sample i the seed `seed + i`: the last one must be a valid seed too
    top = 2**63 - 1
    assert served.request(_params(temperature=1.0, seed=top)).decode.seed == top
    assert served.request(_params(temperature=1.0, seed=top - 2, n=3)).decode.seed == top - 2
    with pytest.raises(KnobError) as e:
        served.request(_params(temperature=1.0, seed=top - 1, n=3))
    assert e.value.field == "seed" and "n=3" in str(e.value)
    assert decode_config(_params(extra_args={"threshold": 0.3}), FAMILIES.get("SDARForCausalLM")).threshold == 0.3


@pytest.mark.parametrize("arch", FAMILIES.names())
@pytest.mark.parametrize("flags", [[], ["--algorithm", "threshold"], ["--threshold", "0.5"], ["--algorithm", "low_confidence"]])
def test_cli_and_server_share_the_family_defaults(arch, flags):
    spec = FAMILIES.get(arch)
    args = build_parser().parse_args(["generate", "/m", "--prompt", "x", *flags])
    extra = {f[2:]: (float(v) if f == "--threshold" else v) for f, v in zip(flags[::2], flags[1::2])}
    served = ServedDecoding.for_spec(spec).request(_params(extra_args=extra)).decode
    assert policies.validate(cli_decode_config(args, spec)) == served
    if arch == "SDARForCausalLM" and not flags:
        assert (served.algorithm, served.threshold) == ("low_confidence_dynamic", 0.85)


def test_steps_and_block_size_are_bounded():
    served = ServedDecoding.from_additional_config(LLADA, None, max_model_len=256)
    assert served.limits == Limits(max_block_size=256, max_steps=DEFAULT_MAX_STEPS)
    for extra, field in [
        ({"block_size": 2**63 - 1}, "block_size"), ({"block_size": 10**9}, "block_size"), ({"block_size": 257}, "block_size"),
        ({"algorithm": "maskgit_plus", "steps": DEFAULT_MAX_STEPS + 1}, "steps"),
        ({"algorithm": "joint_threshold", "max_post_edit_steps": 10**9}, "max_post_edit_steps"),
    ]:
        with pytest.raises(KnobError) as e:
            served.request(_params(extra_args=extra))
        assert e.value.field == field and field in str(e.value), extra
    assert served.request(_params(extra_args={"block_size": 256, "algorithm": "maskgit_plus", "steps": DEFAULT_MAX_STEPS})).block_size == 256
    # without vLLM's max_model_len: the checkpoint's maximum length (tiny LLaDA: 2048)
    assert ServedDecoding(LLADA).limits == Limits(max_block_size=2048)


def test_server_wide_limits_are_set_and_checked_at_launch():
    served = ServedDecoding.from_additional_config(
        LLADA, {"dllm": {"max_steps": 8, "max_block_size": 16, "block_size": 16}}, max_model_len=256,
    )
    assert served.limits == Limits(max_block_size=16, max_steps=8) and served.defaults == (("block_size", 16),)
    with pytest.raises(KnobError) as e:
        served.request(_params(extra_args={"steps": 9}))
    assert e.value.field == "steps" and "8" in str(e.value)
    with pytest.raises(KnobError) as e:
        served.request(_params(extra_args={"block_size": 32}))
    assert e.value.field == "block_size"
    for section, field in [({"max_steps": 0}, "max_steps"), ({"max_block_size": "8"}, "max_block_size"),
                           ({"max_block_size": 16}, "block_size"),  # LLaDA's default block 32 would never fit
                           ({"max_steps": 4, "steps": 5}, "steps")]:
        with pytest.raises(KnobError) as e:
            ServedDecoding.from_additional_config(LLADA, {"dllm": section})
        assert e.value.field == field and "additional_config" in str(e.value), section


def test_validator_raises_vllm_validation_error_with_param():
    cls = validator_for("SDARForCausalLM")
    cls.validate_params(_params(extra_args={"algorithm": "low_confidence", "steps": 3}))
    with pytest.raises(VLLMValidationError) as e:
        cls.validate_params(_params(extra_args={"threshold": 1.5}))
    assert e.value.parameter == "threshold"
    # a bound checkpoint's server defaults are validated in; the class is left unbound afterwards
    try:
        validator_for("SDARForCausalLM", ServedDecoding.from_additional_config(SDAR, {"dllm": {"algorithm": "factor"}}))
        with pytest.raises(VLLMValidationError) as e:
            cls.validate_params(_params(extra_args={"factor": 0}))
        assert e.value.parameter == "factor"
        with pytest.raises(ValueError, match="not a LLaDAModelLM"):
            validator_for("LLaDAModelLM", ServedDecoding(SDAR))
    finally:
        cls.served = None


def test_serve_command_adds_cpu_defaults_unless_given():
    argv, env = build_command("/m", ["--port", "8001"], {})
    assert argv == [sys.executable, "-m", SERVER_MODULE, "--model", "/m", "--enforce-eager", "--port", "8001"]
    assert env == {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_USE_V2_MODEL_RUNNER": "0"}
    argv, env = build_command("/m", ["--no-enforce-eager"], {"VLLM_CPU_KVCACHE_SPACE": "8"})
    assert argv[-2:] == ["/m", "--no-enforce-eager"] and env["VLLM_CPU_KVCACHE_SPACE"] == "8"
    assert build_command("/m", [], {}, cpu_defaults=False) == ([sys.executable, "-m", SERVER_MODULE, "--model", "/m"], {})
    with pytest.raises(ValueError, match="--model"):
        build_command("/m", ["--model=/other"], {})


def test_cli_serve_passes_the_rest_of_the_line_to_vllm():
    args = build_parser().parse_args(["serve", "/m", "--port", "8000", "--additional-config", '{"dllm": {}}'])
    assert (args.model_dir, args.vllm_args, args.no_cpu_defaults) == ("/m", ["--port", "8000", "--additional-config", '{"dllm": {}}'], False)
