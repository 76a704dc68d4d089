"""Decode-config validation, algorithm defaults and ParamBatch construction."""
from __future__ import annotations

import math

import pytest
import torch

from dllm_backend.core.policies import POLICIES, DecodeConfig, ParamBatch, validate

ALL = [
    "low_confidence", "random", "maskgit_plus", "topk_margin", "entropy", "origin", "threshold",
    "factor", "eb_sampler", "hierarchical", "credit", "low_confidence_dynamic", "joint_threshold",
]


def test_every_algorithm_is_registered():
    assert sorted(POLICIES.names()) == sorted(ALL)


@pytest.mark.parametrize(
    "algorithm, expected",
    [
        ("threshold", {"threshold": 0.9}),
        ("low_confidence_dynamic", {"threshold": 0.95}),
        ("joint_threshold", {"threshold": 0.5, "edit_threshold": 0.0, "max_post_edit_steps": 16}),
        ("eb_sampler", {"gamma": 0.15}),
        ("factor", {"factor": 1.0}),
        ("hierarchical", {"threshold": 0.92, "low_threshold": 0.62}),
        ("credit", {"threshold": 0.9}),
        ("low_confidence", {}),
    ],
)
def test_defaults_fill_only_none_fields(algorithm, expected):
    cfg = validate(DecodeConfig(algorithm))
    for name in ("threshold", "factor", "gamma", "low_threshold", "edit_threshold", "max_post_edit_steps"):
        assert getattr(cfg, name) == expected.get(name), name
    assert cfg.steps is None  # "one token per step" is resolved per block
    explicit = validate(DecodeConfig(algorithm, threshold=0.3))
    assert explicit.threshold == 0.3
    assert validate(cfg) == cfg  # idempotent


def test_schedules_are_declared():
    schedules = {name: POLICIES.get(name).schedule for name in ALL}
    assert {n for n, s in schedules.items() if s == "llada"} == {"low_confidence", "random", "low_confidence_dynamic"}
    assert {n for n, s in schedules.items() if s == "dream"} == {"maskgit_plus", "topk_margin", "entropy", "origin"}


def test_int_given_for_float_becomes_float():
    cfg = validate(DecodeConfig("threshold", threshold=1, temperature=1))
    assert cfg.threshold == 1.0 and isinstance(cfg.threshold, float)
    assert isinstance(cfg.temperature, float)


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"algorithm": "nope"}, ["algorithm", "'nope'", "low_confidence", "threshold"]),
        ({"algorithm": "threshold", "threshold": 1.5}, ["threshold", "1.5", "[0, 1]"]),
        ({"algorithm": "threshold", "threshold": -0.1}, ["threshold", "-0.1", "[0, 1]"]),
        ({"algorithm": "threshold", "threshold": math.nan}, ["threshold", "nan"]),
        ({"algorithm": "threshold", "threshold": "0.9"}, ["threshold", "'0.9'", "number"]),
        ({"algorithm": "low_confidence", "steps": 0}, ["steps", "0", "[1,"]),
        ({"algorithm": "low_confidence", "steps": True}, ["steps", "True", "integer"]),
        ({"algorithm": "low_confidence", "steps": 2.0}, ["steps", "2.0", "integer"]),
        ({"algorithm": "low_confidence", "temperature": -1.0}, ["temperature", "-1.0"]),
        ({"algorithm": "low_confidence", "top_p": 0.0}, ["top_p", "0.0", "(0, 1]"]),
        ({"algorithm": "low_confidence", "top_p": 1.01}, ["top_p", "1.01", "(0, 1]"]),
        ({"algorithm": "low_confidence", "top_k": -1}, ["top_k", "-1"]),
        ({"algorithm": "entropy", "alg_temp": -0.5}, ["alg_temp", "-0.5"]),
        ({"algorithm": "eb_sampler", "gamma": -0.01}, ["gamma", "-0.01"]),
        ({"algorithm": "low_confidence", "seed": -3}, ["seed", "-3"]),
        ({"algorithm": "joint_threshold", "max_post_edit_steps": -1}, ["max_post_edit_steps", "-1"]),
        ({"algorithm": "factor", "factor": 0.0}, ["factor", "0.0", "(0, inf)"]),
        ({"algorithm": "hierarchical", "low_threshold": 2.0}, ["low_threshold", "2.0"]),
        ({"algorithm": "joint_threshold", "edit_threshold": -1.0}, ["edit_threshold", "-1.0"]),
        ({"algorithm": "low_confidence", "suppress_eos": 1}, ["suppress_eos", "1", "True or False"]),
        ({"algorithm": "low_confidence", "cfg_scale": -2.0}, ["cfg_scale", "-2.0"]),
    ],
)
def test_errors_name_field_value_and_range(kwargs, words):
    with pytest.raises(ValueError) as err:
        validate(DecodeConfig(**kwargs))
    for word in words:
        assert word in str(err.value), (word, str(err.value))


def test_param_batch_tensors_and_host_facts():
    cfgs = [
        DecodeConfig("threshold", threshold=0.8, temperature=0.7, top_p=0.9, seed=3),
        DecodeConfig("low_confidence", steps=4, top_k=5, suppress_eos=True),
        DecodeConfig("threshold", alg_temp=0.0),
    ]
    pb = ParamBatch.from_configs(cfgs, eos_ids=[7, 9])
    assert pb.num_rows == 3
    assert pb.algorithms == ("threshold", "low_confidence", "threshold")
    assert pb.threshold.dtype == torch.float32
    assert torch.equal(pb.threshold, torch.tensor([0.8, 0.0, 0.9], dtype=torch.float32))
    assert torch.equal(pb.steps, torch.tensor([0, 4, 0]))
    assert pb.temperature.dtype == torch.float64
    assert torch.equal(pb.top_k, torch.tensor([0, 5, 0]))
    assert torch.equal(pb.seed, torch.tensor([3, 0, 0]))
    assert torch.equal(pb.suppress_eos, torch.tensor([False, True, False]))
    assert torch.equal(pb.eos_ids, torch.tensor([7, 9]))
    assert pb.any_sampling and pb.any_top_p and pb.max_top_k == 5 and pb.any_suppress_eos
    assert not pb.any_alg_temp and not pb.any_suppress_eos_confidence
    # grouping computed once on the host, in first-seen order, with the groups' own params
    assert [g.algorithm for g in pb.groups] == ["threshold", "low_confidence"]
    assert torch.equal(pb.groups[0].rows, torch.tensor([0, 2]))
    assert torch.equal(pb.groups[1].rows, torch.tensor([1]))
    assert torch.equal(pb.groups[0].params.threshold, torch.tensor([0.8, 0.9], dtype=torch.float32))
    assert pb.groups[1].params.max_top_k == 5 and not pb.groups[1].params.any_sampling


def test_single_algorithm_batch_has_no_groups():
    pb = ParamBatch.from_configs([DecodeConfig("entropy"), DecodeConfig("entropy", seed=1)], eos_ids=[])
    assert pb.groups == ()
    assert pb.eos_ids.shape == (0,)


def test_param_batch_rejects_empty_and_bad_eos():
    with pytest.raises(ValueError, match="at least one"):
        ParamBatch.from_configs([], eos_ids=[1])
    with pytest.raises(ValueError, match="-4"):
        ParamBatch.from_configs([DecodeConfig("entropy")], eos_ids=[-4])
    with pytest.raises(ValueError, match="top_k"):
        ParamBatch.from_configs([DecodeConfig("entropy", top_k=-2)], eos_ids=[1])
