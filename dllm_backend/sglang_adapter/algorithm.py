"""`CorePolicyAlgorithm`: one SGLang `DllmAlgorithm` parametrised by a core policy.

`algorithm_classes()` makes one subclass per entry of `SGLANG_ALGORITHMS` (SGLang keys its
table by class name). SGLang's own `DllmAlgorithm.run` drives them: forward, `step`, until
every row reports done (or one step per round in FDFO mode).

Contract with `run` (as SGLang's `LowConfidence`): `step` edits `forward_batch.input_ids` in
place and reports a row done only once a forward has seen the block's final tokens, so the
KV left in the block's slots is that of the final tokens. A policy that commits its last
masks therefore reports done at the next step (which changes nothing); an editing policy
(joint_threshold) finishes on a step that changes nothing and reports done at once.

Randomness: the core's counter-based RNG keyed by (seed, rng_offset, position, vocab id),
so every TP rank draws the same numbers. A request's `rng_offset` continues across its
blocks (policy steps taken so far, by request id), as the reference generators count it.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar, List, Optional

import torch

from sglang.srt.dllm.algorithm.base import DllmAlgorithm
from sglang.srt.dllm.config import DllmConfig
from sglang.srt.model_executor.forward_batch_info import ForwardBatch

from ..core import policies
from .algorithm_names import SGLANG_ALGORITHMS
from .row_state import RowState, gather, scatter
from .settings import request_overrides, row_config, sampling_knobs, server_settings

_MAX_TRACKED_REQUESTS = 1 << 16  # rng counters kept for this many recent request ids


class CorePolicyAlgorithm(DllmAlgorithm):
    """A core denoising policy as an SGLang dLLM algorithm (subclasses set `policy_name`)."""

    policy_name: ClassVar[str] = ""

    def __init__(self, config: DllmConfig):
        super().__init__(config)
        self.settings = server_settings(self.policy_name, config.algorithm_config)
        # request id -> policy steps taken in earlier blocks (the block's first rng_offset)
        self._rng_counters: OrderedDict[str, int] = OrderedDict()

    # --- SGLang hooks -------------------------------------------------------------------
    def max_steps(self, block_size: int) -> int:
        base = self.settings.base
        planned = int(base.steps or block_size)
        # the reference loops' guard (4 B + post-edit + planned) plus the confirming forward
        return 4 * block_size + int(base.max_post_edit_steps or 0) + planned + 1

    @classmethod
    def validate_request(cls, req) -> Optional[str]:
        params = getattr(req, "sampling_params", None)
        try:
            over = request_overrides(getattr(params, "custom_params", None))
            policies.validate(policies.DecodeConfig(algorithm=cls.policy_name, **over))
        except (ValueError, TypeError) as e:
            return f"{cls.__name__}: {e}"
        return None

    def init_step_state(self, forward_batch: ForwardBatch) -> List[Any]:
        bs = forward_batch.batch_size
        editable = ~self._prompt_mask(forward_batch)  # [bs, B]
        sampling = self._sampling_rows(forward_batch, bs)
        rids = forward_batch.rids or [None] * bs
        info = forward_batch.sampling_info
        custom = getattr(info, "custom_params", None) or [None] * bs
        seeds = self._seeds(info, custom, bs)
        ids = forward_batch.input_ids.view(bs, self.block_size)
        # a block without masks (a whole prompt block) is done at its first step without a
        # policy step, as the reference loops never denoise it
        nothing_open = (~((ids == self.mask_id) & editable).any(dim=1)).tolist()
        return [
            RowState(
                decode=row_config(self.settings, sampling[i], request_overrides(custom[i]), seeds[i]),
                editable=editable[i],
                rid=rids[i],
                core_done=nothing_open[i],
            )
            for i in range(bs)
        ]

    def step(
        self, forward_batch: ForwardBatch, full_logits: torch.Tensor, states: List[Any]
    ) -> List[bool]:
        bs, width = forward_batch.batch_size, self.block_size
        ids = forward_batch.input_ids.view(bs, width)  # [bs, B], shares storage
        done = [False] * bs
        live: list[int] = []
        for i, row in enumerate(states):
            if row.finished or row.core_done:
                # core_done: this forward saw the final tokens, so their KV is in place
                row.finished = done[i] = True
            else:
                live.append(i)
        if not live:
            return done
        rows = [states[i] for i in live]
        index = torch.tensor(live, dtype=torch.long, device=ids.device)
        logits = full_logits.view(bs, width, -1).index_select(0, index)  # [R, B, V]
        tokens = ids.index_select(0, index)  # [R, B]
        self._init_blocks(rows, tokens, logits.shape[-1])
        params = policies.ParamBatch.from_configs([r.decode for r in rows], self.settings.eos_ids, ids.device)
        state = gather(rows, tokens)
        out = policies.step(logits, state, params, self.mask_id)
        state.step += 1
        state.rng_offset += 1
        scatter(rows, state)
        ids.index_copy_(0, index, out.tokens)  # in place: keeps input_ids' identity
        finished = out.done.tolist()
        changed = out.committed.any(dim=1).tolist()
        for j, i in enumerate(live):
            row = rows[j]
            row.steps += 1
            self._count_step(row.rid)
            if finished[j] and not changed[j]:
                row.finished = done[i] = True
            elif finished[j]:
                row.core_done = True
        return done

    # --- helpers --------------------------------------------------------------------------
    def _init_blocks(self, rows: list[RowState], tokens: torch.Tensor, vocab: int) -> None:
        """Creates the one-row BlockState of rows seen for the first time (tokens [R, B])."""
        for j, row in enumerate(rows):
            if row.block is not None:
                continue
            params = policies.ParamBatch.from_configs([row.decode], self.settings.eos_ids, tokens.device)
            offset = torch.tensor([self._rng_counters.get(row.rid, 0)], dtype=torch.long, device=tokens.device)
            num_steps = None
            if self.settings.schedule_over_block:
                # SDAR / LLaDA2: the schedule spreads the block length, also over a prompt tail
                num_steps = torch.tensor([row.decode.steps or self.block_size], device=tokens.device)
            row.block = policies.new_block_state(
                tokens[j : j + 1].clone(), row.editable[None].clone(), params, self.mask_id,
                num_steps, offset, vocab_size=vocab,
            )
            if self.settings.schedule_over_block:
                row.block.initial_masks.fill_(self.block_size)

    def _count_step(self, rid: str | None) -> None:
        if rid is None:
            return
        self._rng_counters[rid] = self._rng_counters.get(rid, 0) + 1
        self._rng_counters.move_to_end(rid)
        if len(self._rng_counters) > _MAX_TRACKED_REQUESTS:
            self._rng_counters.popitem(last=False)

    @staticmethod
    def _sampling_rows(forward_batch: ForwardBatch, bs: int) -> list[dict[str, Any]]:
        info = forward_batch.sampling_info
        if info is None:  # no sampling info: greedy
            return [{"temperature": 0.0, "top_p": 1.0, "top_k": 0}] * bs
        temps = info.temperatures.view(-1).tolist()
        top_ps = info.top_ps.view(-1).tolist()
        top_ks = info.top_ks.view(-1).tolist()
        return [sampling_knobs(temps[i], top_ps[i], int(top_ks[i]), info.vocab_size) for i in range(bs)]

    @staticmethod
    def _seeds(info, custom: list, bs: int) -> list[int | None]:
        """SGLang's `sampling_seed` where the batch carries it (deterministic mode), else None
        (the YAML / core default); custom_params' seed, applied later, wins over both."""
        seeds = getattr(info, "sampling_seed", None)
        if seeds is None:
            return [None] * bs
        return [int(s) for s in seeds.view(-1).tolist()]


def algorithm_classes() -> dict[str, type[CorePolicyAlgorithm]]:
    """SGLang name -> a `CorePolicyAlgorithm` subclass of that name, one per core policy."""
    return {
        name: type(name, (CorePolicyAlgorithm,), {"policy_name": policy, "__module__": __name__})
        for name, policy in SGLANG_ALGORITHMS.items()
    }


def register_algorithms(table: dict[str, type]) -> None:
    """Adds our classes to SGLang's `algo_name_to_cls` (idempotent; built-ins never replaced)."""
    for name, cls in _CLASSES.items():
        if name in table and table[name] is not cls:
            raise ValueError(f"SGLang already has a dLLM algorithm named {name!r}; not replacing it")
        table[name] = cls


_CLASSES = algorithm_classes()
globals().update(_CLASSES)  # importable by name (pickling, SGLang's logs)
