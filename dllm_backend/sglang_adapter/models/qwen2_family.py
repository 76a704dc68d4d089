"""Dream and Fast-dLLM v2 on SGLang: its Qwen2 model, bidirectional over prefix + block, logits shifted.

The checkpoints use Qwen2's tensor names (model.layers.{i}.self_attn.{q,k,v,o}_proj, mlp.*,
model.norm, lm_head), so SGLang's `Qwen2ForCausalLM.load_weights` loads them unchanged.
"""
from __future__ import annotations

from sglang.srt.model_executor.forward_batch_info import ForwardBatch
from sglang.srt.models.qwen2 import Qwen2ForCausalLM

from ._dllm import make_bidirectional, shift_block_logits


class _ShiftedQwen2(Qwen2ForCausalLM):
    def __init__(self, config, quant_config=None, prefix: str = "") -> None:
        super().__init__(config, quant_config=quant_config, prefix=prefix)
        make_bidirectional(self, config)

    def forward(self, input_ids, positions, forward_batch: ForwardBatch, *args, **kwargs):
        out = super().forward(input_ids, positions, forward_batch, *args, **kwargs)
        full = getattr(out, "full_logits", None)
        if full is not None and forward_batch.forward_mode.is_dllm_extend():
            out.full_logits = shift_block_logits(full, forward_batch.batch_size)
        return out


class DreamModel(_ShiftedQwen2):
    pass


class Fast_dLLM_QwenForCausalLM(_ShiftedQwen2):  # noqa: N801 - the checkpoint's class name
    pass


EntryClass = [DreamModel, Fast_dLLM_QwenForCausalLM]
