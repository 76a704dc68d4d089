"""SGLang `--dllm-algorithm` names of the core policies (light: imports neither sglang nor torch code paths).

SGLang keys its algorithm table by class name, so each name here becomes the `__name__` of
one generated `DllmAlgorithm` subclass (see `algorithm.py`). The names avoid SGLang's own
`LowConfidence` / `JointThreshold`, whose rules differ from ours (greedy only, no schedule).
"""
from __future__ import annotations

from ..core.registry import Registry

# SGLang algorithm name -> core policy name (`DecodeConfig.algorithm`)
SGLANG_ALGORITHMS: Registry[str] = Registry("dLLM algorithm of dllm-backend")
for _sglang_name, _policy in (
    ("Threshold", "threshold"),
    ("Factor", "factor"),
    ("EntropyBounded", "eb_sampler"),
    ("Hierarchical", "hierarchical"),
    ("Credit", "credit"),
    ("LowConfidenceSchedule", "low_confidence"),
    ("LowConfidenceDynamic", "low_confidence_dynamic"),
    ("DreamEntropy", "entropy"),
    ("DreamMargin", "topk_margin"),
    ("DreamMaskGitPlus", "maskgit_plus"),
    ("DreamOrigin", "origin"),
    ("RandomRemask", "random"),
    ("JointThresholdEdit", "joint_threshold"),
):
    SGLANG_ALGORITHMS.add(_sglang_name, _policy)
