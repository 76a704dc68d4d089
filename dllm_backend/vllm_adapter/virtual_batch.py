"""Block-causal attention from non-causal kernels: a step's queries as non-causal virtual sequences.

Engine-free (numpy and torch; vLLM's attention metadata is read and replaced by field
name only). The layouts cut each request's query into segments (`Layout.segments`:
(start, end, attended), queries [start, end) attending keys [0, attended)); a block-causal
query spanning several blocks becomes one segment per block. Attention kernels that
take a batch of variable-length non-causal sequences over a paged KV cache then compute
exactly that mask when every segment is presented as a sequence of its own:

- query_start_loc: the segments' token offsets (a request's segments are adjacent in
  the flattened token batch, so only the boundaries are added);
- seq_lens: each segment's `attended` (keys [0, attended) of its request);
- block_table: the request's row, repeated once per segment (all segments of a request
  read the same pages);
- per-request host fields the builders read (`is_prefilling`, `req_idx`, ...): the
  request's value repeated likewise. Slot mapping and positions are per token and stay.

A segment's keys include KV written by earlier segments of the same query: every
backend writes the step's KV into the cache before its attention reads it, as chunked
prefill relies on. One representation serves every backend and runner:

- CPU_ATTN (tested): `cpu_attn_get_scheduler_metadata(num_reqs, seq_lens, query_start_loc,
  causal=False)` and `cpu_attention_with_kv_cache(block_table)` read exactly these fields.
- FLASH_ATTN (V1 GPU runner): `flash_attn_varlen_func(cu_seqlens_q=query_start_loc,
  seqused_k=seq_lens, block_table, causal=False, max_seqlen_q / max_seqlen_k)`; FA3's
  ahead-of-time scheduler metadata is built inside the builder from the same fields
  (batch_size = num_reqs), so it follows. Its per-sequence persistent buffers are used
  only with full CUDA graphs or decode context parallelism, both refused for dLLMs.
- TRITON_ATTN: `unified_attention` finds a token's sequence by searching
  query_start_loc and reads seq_lens / block_table per sequence; queries longer than one
  token always take its 2D kernel, which sizes nothing by the sequence count.
- FLEX_ATTENTION: the non-causal path builds its mask from query_start_loc (document ids),
  seq_lens and the inverse block table, so virtual sequences need no mask_mod. Its
  persistent per-sequence buffers (`persistent_seq_lens`, `persistent_query_start_loc`,
  `persistent_offset_tensor`, `persistent_physical_to_logical`) are sized by
  max_num_seqs, and a step can hold more segments than requests: `capacity` bounds the
  count and the runner enlarges those buffers to it (`fit_sequence_buffers`).
- Model Runner V2: a dLLM `ModelState.prepare_attn` calls `attn_utils.build_attn_metadata`
  with the same arrays (query_start_loc_cpu / _gpu, seq_lens, block_tables gathered by
  `req`, num_reqs = the segment count, req_idx = idx_mapping[req], causal=False).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .layouts import Segment

# CommonAttentionMetadata fields with one entry per request that a split repeats per segment
_PER_REQUEST = ("is_prefilling", "rswa_prefix_lens", "replayssm_decode_base_cpu")
# fields a split cannot carry (the features are off for dLLMs); refused by name if set
_UNSUPPORTED = ("dcp_local_seq_lens", "encoder_seq_lens", "mm_req_doc_ranges", "logits_indices_padded")


@dataclass
class VirtualBatch:
    """The step's virtual sequences: `req` [S] the batch row of each one's request,
    `query_start_loc` [S + 1] and `seq_lens` [S] (int32, host)."""

    req: np.ndarray
    query_start_loc: np.ndarray
    seq_lens: np.ndarray
    _device: dict[torch.device, tuple[torch.Tensor, ...]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_segments(cls, per_request: list[list[Segment]]) -> "VirtualBatch | None":
        """One list of segments per batch row (in batch order, covering the row's query);
        None when every row is a single segment attending exactly its own query (the
        runner's metadata is then right as it is, apart from the causal flag)."""
        if all(len(segs) == 1 and segs[0][1] == segs[0][2] for segs in per_request):
            return None
        req = np.repeat(np.arange(len(per_request)), [len(segs) for segs in per_request])
        lens = [e - s for segs in per_request for s, e, _ in segs]
        starts = np.zeros(len(lens) + 1, dtype=np.int32)
        np.cumsum(lens, out=starts[1:])
        seq_lens = np.array([a for segs in per_request for _, _, a in segs], dtype=np.int32)
        return cls(req=req, query_start_loc=starts, seq_lens=seq_lens)

    @property
    def num_seqs(self) -> int:
        return len(self.seq_lens)

    def _on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(req, query_start_loc, seq_lens) on `device`, copied once per step."""
        found = self._device.get(device)
        if found is None:
            arrays = (self.req.astype(np.int64), self.query_start_loc, self.seq_lens)
            found = self._device[device] = tuple(torch.from_numpy(a).to(device, non_blocking=True) for a in arrays)
        return found

    def metadata_changes(self, cm: Any) -> dict[str, Any]:
        """The fields of vLLM's `CommonAttentionMetadata` `cm` (per request) to replace so that
        it describes the virtual sequences (for `dataclasses.replace`)."""
        for name in _UNSUPPORTED:
            if getattr(cm, name, None) is not None:
                raise ValueError(f"attention metadata field {name!r} is set: block-causal segments do not support it")
        if cm.num_reqs != int(self.req[-1]) + 1:
            # NOTE: e.g. micro-batching (DBO) builds each half separately; the split is per batch
            raise ValueError(
                f"attention metadata of {cm.num_reqs} requests, the step's segments cover {int(self.req[-1]) + 1}"
            )
        req, starts, seq_lens = self._on(cm.seq_lens.device)
        changes: dict[str, Any] = {
            "num_reqs": self.num_seqs,
            "query_start_loc": starts,
            "query_start_loc_cpu": torch.from_numpy(self.query_start_loc),
            "seq_lens": seq_lens,
            "max_query_len": int(np.diff(self.query_start_loc).max()),
            "max_seq_len": int(self.seq_lens.max()),
            "block_table_tensor": cm.block_table_tensor.index_select(0, req.to(cm.block_table_tensor.device)),
            # caches derived from the per-request fields
            "_num_computed_tokens_cache": None,
            "_token_to_req_indices_cache": None,
        }
        if cm.seq_lens_cpu_upper_bound is not None:
            changes["seq_lens_cpu_upper_bound"] = torch.from_numpy(self.seq_lens).to(cm.seq_lens_cpu_upper_bound.dtype)
        host_req = torch.from_numpy(self.req)
        for name in _PER_REQUEST:
            value = getattr(cm, name, None)
            if value is not None:
                changes[name] = value.index_select(0, host_req.to(value.device))
        if getattr(cm, "req_idx", None) is not None:
            changes["req_idx"] = cm.req_idx[self.req]
        return changes


def capacity(max_num_seqs: int, max_num_batched_tokens: int, block: int | None) -> int:
    """Most virtual sequences one step can hold: every request one segment, plus, for
    block-causal queries (`block` not None), one more per block boundary a query can cross
    (at most one per `block` scheduled tokens)."""
    return max_num_seqs + (max_num_batched_tokens // block if block else 0)


# metadata-builder buffers with one row per sequence (FlexAttention's), allocated with
# max_num_seqs rows (+ `extra`) by the builder: name -> extra rows
_SEQUENCE_BUFFERS = {"persistent_offset_tensor": 0, "persistent_seq_lens": 0, "persistent_query_start_loc": 1}


def fit_sequence_buffers(builder: Any, seqs: int) -> None:
    """Enlarges a builder's per-sequence persistent buffers to `seqs` rows, once, before its
    first build (their addresses then stay fixed, as the builder expects). Builders without
    such buffers (CPU_ATTN, FLASH_ATTN, TRITON_ATTN) are left as they are."""
    for name, extra in _SEQUENCE_BUFFERS.items():
        buf = getattr(builder, name, None)
        if isinstance(buf, torch.Tensor) and buf.shape[0] < seqs + extra:
            setattr(builder, name, buf.new_empty((seqs + extra, *buf.shape[1:])))
    # NOTE: FlexAttention allocates this one at its first build, [max_num_seqs, KV blocks]
    if getattr(builder, "persistent_physical_to_logical", False) is None:
        blocks = builder.cache_config.num_gpu_blocks
        if blocks is not None:
            device = builder.persistent_seq_lens.device
            builder.persistent_physical_to_logical = torch.empty(seqs, blocks, dtype=torch.long, device=device)
