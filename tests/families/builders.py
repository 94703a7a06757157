"""Tiny random models of real families, each with a tokenizer and chat template like the family's own.

Built at test time in well under a second each (2 layers, hidden 32, vocab ~300). The templates
keep what matters here from each family's published template: the turn headers, the token that
ends an assistant turn, what comes after it (a newline, an EOS), roles it refuses, Qwen3's
reasoning block, and the tokenizer's ``eos_token`` and ``generation_config.eos_token_id`` list,
which for several families differ from the end-of-turn token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CHATML = (
    "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Qwen2.5: ChatML with a default system prompt when none is given.
QWEN2 = (
    "{% if messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}" + CHATML
)
# Qwen3: the last assistant turn gets an (empty) reasoning block; enable_thinking=False puts that
# block into the generation prompt instead.
QWEN3 = (
    "{% for m in messages %}{% if m['role'] == 'assistant' and loop.last %}"
    "{{ '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% else %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% if enable_thinking is defined and enable_thinking is false %}"
    "{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}"
    "{% endif %}"
)
LLAMA3 = (
    "{{ bos_token }}{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' "
    "+ m['content'] | trim + '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)
_ALTERNATE = (
    "{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for m in messages %}" + _ALTERNATE + "{% if m['role'] == 'user' %}"
    "{{ '[INST] ' + m['content'] + '[/INST]' }}{% else %}{{ m['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% for m in messages %}"
    + _ALTERNATE
    + "{% set role = 'model' if m['role'] == 'assistant' else m['role'] %}"
    "{{ '<start_of_turn>' + role + '\\n' + m['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{% endif %}"
)
# Phi-3/3.5: known roles only; a conversation without a generation prompt ends with EOS.
PHI3 = (
    "{% for m in messages %}{% if m['role'] in ['system', 'user', 'assistant'] %}"
    "{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)
# OLMo 2 (Tulu format): an assistant turn ends with EOS; text role tags.
OLMO2 = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'assistant' %}"
    "{{ '<|assistant|>\\n' + m['content'] + eos_token + ('' if loop.last else '\\n') }}"
    "{% elif m['role'] in ['system', 'user'] %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '\\n' }}"
    "{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}{% endfor %}"
)
COHERE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}"
    "{{ '<|START_OF_TURN_TOKEN|><|USER_TOKEN|>' + m['content'] + '<|END_OF_TURN_TOKEN|>' }}"
    "{% elif m['role'] == 'assistant' %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' + m['content'] "
    "+ '<|END_OF_TURN_TOKEN|>' }}{% else %}{{ '<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>' + m['content'] "
    "+ '<|END_OF_TURN_TOKEN|>' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>' }}{% endif %}"
)
LFM2 = "{{ bos_token }}" + CHATML


@dataclass(frozen=True)
class Family:
    """One model family: config, tokenizer specials, template and what the tests expect of it."""

    name: str
    model_type: str
    template: str | None
    specials: tuple[str, ...]  # special tokens; the first is the padding token
    eos: str
    end_of_turn: str  # what the family's assistant turn really ends with
    stop_tokens: tuple[str, ...]  # generation_config.eos_token_id
    bos: str | None = None
    plain_tokens: tuple[str, ...] = ()  # added, not special (Qwen3's <think>)
    config: dict[str, Any] = field(default_factory=dict)
    incontext: bool = True  # the template renders the in-context roles
    prefix_fallback: str | None = None  # why prefix sharing falls back for this family, if it does


_CHATML_SPECIALS = ("<|pad|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>")
_GEMMA_CONFIG = {
    "head_dim": 8,
    "sliding_window": 128,
    "layer_types": ["sliding_attention", "full_attention"],
    "query_pre_attn_scalar": 8,
}
FAMILIES = [
    Family(
        "llama",
        "llama",
        LLAMA3,
        (
            "<|pad|>",
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|eot_id|>",
            "<|eom_id|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
        ),
        eos="<|eot_id|>",
        end_of_turn="<|eot_id|>",
        bos="<|begin_of_text|>",
        stop_tokens=("<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"),
    ),
    Family(
        "mistral",
        "mistral",
        MISTRAL,
        ("<pad>", "<s>", "</s>", "[INST]", "[/INST]"),
        eos="</s>",
        end_of_turn="</s>",
        bos="<s>",
        stop_tokens=("</s>",),
        config={"sliding_window": 128},
        incontext=False,
    ),
    Family(
        "qwen2",
        "qwen2",
        QWEN2,
        _CHATML_SPECIALS,
        eos="<|endoftext|>",
        end_of_turn="<|im_end|>",
        stop_tokens=("<|im_end|>", "<|endoftext|>"),
    ),
    Family(
        "qwen3",
        "qwen3",
        QWEN3,
        _CHATML_SPECIALS,
        eos="<|im_end|>",
        end_of_turn="<|im_end|>",
        stop_tokens=("<|im_end|>", "<|endoftext|>"),
        plain_tokens=("<think>", "</think>"),
        config={"head_dim": 8},
    ),
    Family(
        "qwen3_moe",
        "qwen3_moe",
        QWEN3,
        _CHATML_SPECIALS,
        eos="<|im_end|>",
        end_of_turn="<|im_end|>",
        stop_tokens=("<|im_end|>", "<|endoftext|>"),
        plain_tokens=("<think>", "</think>"),
        config={"head_dim": 8, "num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 32},
        # the trainer adds the router load-balancing loss (as SFTTrainer), which reads the router
        # logits of whole sequences
        prefix_fallback="MoE router loss",
    ),
    Family(
        "gemma2",
        "gemma2",
        GEMMA,
        ("<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"),
        eos="<eos>",
        end_of_turn="<end_of_turn>",
        bos="<bos>",
        stop_tokens=("<eos>", "<end_of_turn>"),
        config={**_GEMMA_CONFIG, "final_logit_softcapping": 30.0, "attn_logit_softcapping": 50.0},
        incontext=False,
    ),
    Family(
        "gemma3",
        "gemma3_text",
        GEMMA,
        ("<pad>", "<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"),
        eos="<eos>",
        end_of_turn="<end_of_turn>",
        bos="<bos>",
        stop_tokens=("<eos>", "<end_of_turn>"),
        config=_GEMMA_CONFIG,
        incontext=False,
    ),
    # Phi-3.5-mini: longrope with a (tiny) original context of 24 positions, so the batches cross it
    Family(
        "phi3",
        "phi3",
        PHI3,
        ("<|pad|>", "<|endoftext|>", "<|assistant|>", "<|end|>", "<|user|>", "<|system|>"),
        eos="<|endoftext|>",
        end_of_turn="<|end|>",
        stop_tokens=("<|end|>", "<|assistant|>", "<|endoftext|>"),
        config={
            "max_position_embeddings": 128,
            "original_max_position_embeddings": 24,
            "rope_scaling": {"rope_type": "longrope", "short_factor": [1.0] * 4, "long_factor": [4.0] * 4},
        },
        incontext=False,
        prefix_fallback="longrope",
    ),
    Family(
        "gpt2",
        "gpt2",
        None,
        ("<|pad|>", "<|endoftext|>"),
        eos="<|endoftext|>",
        end_of_turn="<|endoftext|>",
        stop_tokens=("<|endoftext|>",),
        incontext=False,
    ),
    Family(
        "olmo2",
        "olmo2",
        OLMO2,
        ("<|pad|>", "<|endoftext|>"),
        eos="<|endoftext|>",
        end_of_turn="<|endoftext|>",
        bos="<|endoftext|>",
        stop_tokens=("<|endoftext|>",),
        plain_tokens=("<|user|>", "<|assistant|>", "<|system|>"),
        incontext=False,
    ),
    Family(
        "cohere2",
        "cohere2",
        COHERE,
        (
            "<PAD>",
            "<BOS_TOKEN>",
            "<|END_OF_TURN_TOKEN|>",
            "<|START_OF_TURN_TOKEN|>",
            "<|USER_TOKEN|>",
            "<|CHATBOT_TOKEN|>",
            "<|SYSTEM_TOKEN|>",
        ),
        eos="<|END_OF_TURN_TOKEN|>",
        end_of_turn="<|END_OF_TURN_TOKEN|>",
        bos="<BOS_TOKEN>",
        stop_tokens=("<|END_OF_TURN_TOKEN|>",),
        config={
            "sliding_window": 128,
            "layer_types": ["sliding_attention", "full_attention"],
            "logit_scale": 0.5,
        },
    ),
    # LFM2: a convolution layer then an attention layer (the hybrid family)
    Family(
        "lfm2",
        "lfm2",
        LFM2,
        ("<|pad|>", "<|startoftext|>", "<|im_start|>", "<|im_end|>"),
        eos="<|im_end|>",
        end_of_turn="<|im_end|>",
        bos="<|startoftext|>",
        stop_tokens=("<|im_end|>",),
        config={"layer_types": ["conv", "full_attention"]},
        prefix_fallback="recurrent/hybrid",
    ),
]
BY_NAME = {family.name: family for family in FAMILIES}

WORDS = (
    "Name a color . red green blue yellow Pick number between and 1 2 3 4 5 6 7 8 9 10 user assistant "
    "system model output input description Colors Numbers t u p You are a helpful"
)


def build_tokenizer(family: Family):
    """A byte-level BPE tokenizer (~300 tokens) with the family's special tokens and template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=list(family.specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([WORDS] * 20, trainer=trainer)
    named = {family.specials[0], family.eos, family.bos}
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=family.eos,
        pad_token=family.specials[0],
        bos_token=family.bos,
        extra_special_tokens=[token for token in family.specials if token not in named],
    )
    if family.plain_tokens:
        fast.add_tokens(list(family.plain_tokens))
    fast.chat_template = family.template
    return fast


def build_model(family: Family, tokenizer, seed: int = 0):
    """A random 2-layer model of the family matched to ``tokenizer``."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(seed)
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": tokenizer.bos_token_id,
    }
    if family.model_type == "gpt2":
        config = AutoConfig.for_model(
            "gpt2",
            vocab_size=len(tokenizer),
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_positions=256,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **ids,
        )
    else:
        config = AutoConfig.for_model(
            family.model_type,
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            **{"max_position_embeddings": 256, **family.config},
            **ids,
        )
    model = AutoModelForCausalLM.from_config(config).float()
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(list(family.stop_tokens))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model
