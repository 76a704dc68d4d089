"""The AROUND hook on SGLang's `DllmConfig.from_server_args` that adds our architectures.

SGLang keeps its dLLM parameters (block size, mask id) in a dict local to that function and
raises "Unknown diffusion LLM: <arch>" for anything else; no registry exists. The hook
calls the original first (built-in architectures are untouched) and only when it refuses
one of `DLLM_ARCHITECTURES` builds the `DllmConfig` itself, from our family specs and the
checkpoint's own ids. The build below mirrors the original's steps for 0.5.23 (algorithm
lookup, supported architectures, YAML, max running requests, FDFO, context encoding,
input-preparation capture); `tests/engine_sglang/test_config_hook.py` pins it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..core.families import FAMILIES, ResolvedFamily, resolve, resolve_dir

# served through this hook; SGLang's own table already has SDAR(-MoE) and LLaDA2
DLLM_ARCHITECTURES: tuple[str, ...] = (
    "LLaDAModelLM", "LLaDAMoEModelLM", "DreamModel", "Fast_dLLM_QwenForCausalLM",
)
# Dream's family default "whole canvas" has no fixed size; SGLang needs one block size
DEFAULT_FULL_ATTENTION_BLOCK = 32
_UNKNOWN = "Unknown diffusion LLM"


def family_for(hf_config: Any, model_path: str | None) -> ResolvedFamily:
    """The family of a served checkpoint: `resolve_dir` for a local directory (tokenizer ids
    too), else the config dict alone."""
    if model_path and (Path(model_path) / "config.json").is_file():
        return resolve_dir(model_path)
    return resolve(hf_config.to_dict())


def block_and_mask(family: ResolvedFamily, requested: int | None) -> tuple[int, int]:
    """(block size, mask id): the YAML's block_size if given (checked against the family),
    else the family's block; full-attention families without one get 32."""
    block = requested if requested is not None else family.block_size
    if block == 0:
        block = DEFAULT_FULL_ATTENTION_BLOCK
    return family.check_block_size(block), family.mask_id


def adapter_defaults(family: ResolvedFamily) -> dict[str, Any]:
    """Algorithm-config entries our algorithms read, filled from the family unless the YAML
    sets them: full-attention families (LLaDA's loop) spread fixed schedules over the block's
    masks, block-causal ones over the block; EOS ids for `suppress_eos`."""
    return {
        "schedule_over_block": family.spec.attention == "block_causal",
        "eos_ids": list(family.eos_ids),
    }


def from_server_args_hook(original: Callable, server_args) -> Any:
    """AROUND hook: the original for every architecture it knows, ours for ours."""
    try:
        return original(server_args)
    except RuntimeError as e:
        if not str(e).startswith(_UNKNOWN):
            raise
        arch = str(e).split(":", 1)[-1].strip()
        if arch not in DLLM_ARCHITECTURES:
            raise
    return build_dllm_config(server_args)


def build_dllm_config(server_args):
    """The `DllmConfig` of one of our architectures (see the module docstring)."""
    import yaml
    from sglang.srt.arg_groups.model_override_base import resolving_view
    from sglang.srt.configs.model_config import ModelConfig
    from sglang.srt.dllm.algorithm import get_algorithm_cls
    from sglang.srt.dllm.config import DllmConfig

    cfg = resolving_view(server_args)
    model_config = ModelConfig.from_server_args(server_args, model_path=cfg.model_path, model_revision=cfg.revision)
    arch = model_config.hf_config.architectures[0]
    family = family_for(model_config.hf_config, cfg.model_path)
    algorithm_cls = get_algorithm_cls(cfg.dllm_algorithm)
    if algorithm_cls.supported_architectures and arch not in algorithm_cls.supported_architectures:
        raise ValueError(f"{cfg.dllm_algorithm} does not support model architecture {arch}")
    algorithm_config: dict[str, Any] = {}
    if cfg.dllm_algorithm_config is not None:
        with open(cfg.dllm_algorithm_config) as f:
            algorithm_config = yaml.safe_load(f) or {}
        if not isinstance(algorithm_config, dict):
            raise ValueError("The dLLM algorithm config must be a YAML mapping")
    block_size, mask_id = block_and_mask(family, algorithm_config.get("block_size"))
    if arch in FAMILIES and getattr(algorithm_cls, "policy_name", ""):
        # only our algorithms read these keys; SGLang's own ones get the YAML untouched
        algorithm_config = {**adapter_defaults(family), **algorithm_config}
    return DllmConfig(
        algorithm=cfg.dllm_algorithm,
        algorithm_config=algorithm_config,
        block_size=block_size,
        mask_id=mask_id,
        max_running_requests=1 if cfg.max_running_requests is None else cfg.max_running_requests,
        first_done_first_out_mode=cfg.dllm_fdfo,
        requires_separate_context_encoding=algorithm_cls.requires_separate_context_encoding,
        capture_input_preparation=(
            algorithm_cls.capture_input_preparation
            and algorithm_config.get("capture_input_preparation", True)
        ),
    )
