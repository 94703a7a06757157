"""A random-weight toy model and tokenizer built in a second, for tests of mechanics only.

Tests of behaviour (loss falls, distributions move) use the pretrained tiny model instead.
"""

from __future__ import annotations

from pathlib import Path

CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)
WORDS = "Name a color . red green blue yellow Pick number between and 1 2 3 4 5 6 7 8 9 10 user assistant"


def toy_tokenizer():
    """A byte-level BPE tokenizer with ChatML special tokens and a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|pad|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator([WORDS] * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|pad|>",
        additional_special_tokens=["<|im_start|>"],
    )
    fast.chat_template = CHATML
    return fast


def toy_model(tokenizer, seed: int = 0, layers: int = 2):
    """A random 2-layer Llama-style causal LM matched to the tokenizer."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def save_toy(path: Path, seed: int = 0) -> Path:
    """Save a toy model + tokenizer to ``path`` (loadable with ``from_pretrained``)."""
    tokenizer = toy_tokenizer()
    toy_model(tokenizer, seed).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def spectrum_config(output_dir, **overrides):
    """A SpectrumConfig for quick test runs: no saving, no reporting, no checkpointing; overridable."""
    from spectrum_tune import SpectrumConfig

    values = dict(
        output_dir=str(output_dir), report_to=[], save_strategy="no", gradient_checkpointing=False, seed=0
    )
    return SpectrumConfig(**{**values, **overrides})
