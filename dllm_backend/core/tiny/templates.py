"""Chat templates (Jinja) of the dLLM families, as their real tokenizer_config.json renders them.

Each renders plain text conversations exactly as the family's published template does; the
tool-calling and reasoning-history branches of the Qwen and Ling templates are left out
(tiny checkpoints are never asked to call tools).
"""
from __future__ import annotations

# LLaDA-8B-Instruct: Llama-3 headers, BOS before the first turn, content trimmed.
LLAMA3 = (
    "{%- for message in messages -%}"
    "{%- if loop.first -%}{{ bos_token }}{%- endif -%}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{{ message['content'] | trim }}{{ '<|eot_id|>' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif -%}"
)

# Qwen2.5 (Dream, Fast-dLLM v2): ChatML with a default system turn.
QWEN2 = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{{ '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- set rest = messages[1:] -%}"
    "{%- else -%}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- set rest = messages -%}"
    "{%- endif -%}"
    "{%- for message in rest -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

# Qwen3 (SDAR): ChatML without a default system turn; earlier answers lose their <think> part;
# enable_thinking=False pre-fills an empty think block.
QWEN3 = (
    "{%- for message in messages -%}"
    "{%- set content = message['content'] -%}"
    "{%- if message['role'] == 'assistant' and '</think>' in content -%}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') -%}"
    "{%- endif -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + content + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}"
    "{%- endif -%}"
    "{%- endif -%}"
)

# Ling 2.0 / BailingMoeV2 (LLaDA2.x, LLaDA-MoE): the system turn always exists and carries the
# "detailed thinking off" switch; every turn ends with <|role_end|>.
BAILING2 = (
    "{{ '<role>SYSTEM</role>' }}"
    "{%- if messages and messages[0]['role'] == 'system' -%}{{ messages[0]['content'] + '\\n' }}{%- endif -%}"
    "{{ 'detailed thinking off<|role_end|>' }}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{ '<role>HUMAN</role>' + message['content'] + '<|role_end|>' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ '<role>ASSISTANT</role>' + message['content'] + '<|role_end|>' }}"
    "{%- elif message['role'] == 'system' and not loop.first -%}"
    "{{ '<role>SYSTEM</role>' + message['content'] + '<|role_end|>' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<role>ASSISTANT</role>' }}{%- endif -%}"
)
