"""Prefix sharing is exact or off: prompt tuning and sliding windows fall back; with activation
checkpointing it shares, checkpointing whole calls instead of layers, with the same gradients.

Each case used to run the continuations without (or with a different) prompt and give log-probs
off by up to 0.5 nats behind a warning; now the trainer notices before any model call, scores
full sequences (the same numbers as prefix sharing off) and says so in one line.
"""

from __future__ import annotations

import logging

import pytest
import torch
from datasets import Dataset

from spectrum_tune import SpectrumTrainer

from ..toy import spectrum_config, toy_model, toy_tokenizer

ROWS = [
    {"prompt": [{"role": "user", "content": "Name a color."}], "references": ["red", "green", "blue"]},
    {"prompt": [{"role": "user", "content": "Pick a number between 1 and 3."}], "references": ["1", "2"]},
]


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


@pytest.fixture(autouse=True)
def fresh_notices(monkeypatch):
    """The fallback notice is said once per reason and process; earlier tests may have said it."""
    from spectrum_tune.training import prefix

    monkeypatch.setattr(prefix, "_NOTICED", set())


def _trainer(model, tokenizer, tmp_path, **kwargs):
    return SpectrumTrainer(
        model,
        args=spectrum_config(tmp_path, max_steps=1),
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(ROWS),
        **kwargs,
    )


def _batch(trainer):
    """Every row collated, on the model's device (CUDA where one is visible), as in training."""
    rows = [trainer.train_dataset[i] for i in range(len(ROWS))]
    return trainer._prepare_inputs(trainer.data_collator(rows))


def _shared_and_full(trainer, caplog):
    """(loss, grads) of one batch with prefix sharing requested, then as full sequences."""
    batch = _batch(trainer)
    assert "prefix_ids" in batch
    full = {key: value for key, value in batch.items() if not key.startswith(("prefix_", "cont_"))}
    model = trainer.model
    model.train()
    results = []
    with caplog.at_level(logging.WARNING, logger="spectrum_tune"):
        for inputs in (batch, full):
            model.zero_grad()
            loss = trainer.compute_loss(model, inputs)
            loss.backward()
            results.append(
                (loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None])
            )
    return results, [r.getMessage() for r in caplog.records if "prefix sharing off" in r.getMessage()]


def _assert_same(results):
    (shared_loss, shared_grads), (full_loss, full_grads) = results
    torch.testing.assert_close(shared_loss, full_loss, rtol=1e-6, atol=0)
    assert len(shared_grads) == len(full_grads) > 0
    for shared, full in zip(shared_grads, full_grads, strict=True):
        torch.testing.assert_close(shared, full, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("reentrant", "chunk"), [(False, 64), (True, 2)])
def test_checkpointing_shares_with_the_full_sequence_gradient(tokenizer, tmp_path, caplog, reentrant, chunk):
    """Layer checkpointing on (non-reentrant as TRL's default, reentrant as k-bit preparation; one
    chunk and several): prefix sharing stays on, checkpoints whole calls (every layer runs twice:
    forward and recompute) and gives the full sequences' loss and gradients."""
    model = toy_model(tokenizer)
    trainer = SpectrumTrainer(
        model,
        args=spectrum_config(tmp_path, max_steps=1, spectrum_chunk_size=chunk),
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(ROWS),
    )
    # after the trainer is built (as a k-bit preparation step or a user would): the config's
    # gradient_checkpointing=False does not know about it
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": reentrant})
    layer = model.model.layers[0]
    calls = []
    record = lambda module, _args, _out: calls.append(module.gradient_checkpointing)  # noqa: E731
    handle = layer.register_forward_hook(record)
    try:
        batch = _batch(trainer)
        model.train()
        trainer.compute_loss(model, batch).backward()
    finally:
        handle.remove()
    # prompt encode + each continuation chunk, each once forward and once recomputed, paused inside
    chunks = -(-batch["cont_ids"].size(0) // chunk)
    assert calls == [False] * (2 * (1 + chunks))
    assert all(module.gradient_checkpointing for module in model.model.layers)  # restored after the step
    results, notices = _shared_and_full(trainer, caplog)
    _assert_same(results)
    assert not notices


def test_prompt_tuning_falls_back(tokenizer, tmp_path, caplog):
    from peft import PromptTuningConfig

    config = PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4)
    trainer = _trainer(toy_model(tokenizer), tokenizer, tmp_path, peft_config=config)
    results, notices = _shared_and_full(trainer, caplog)
    _assert_same(results)
    assert len(notices) == 1 and "prompt learning" in notices[0]


def test_plain_model_still_shares(tokenizer, tmp_path, caplog):
    results, notices = _shared_and_full(_trainer(toy_model(tokenizer), tokenizer, tmp_path), caplog)
    _assert_same(results)
    assert not notices


def test_a_sliding_window_shorter_than_the_sequences_blocks_sharing():
    from transformers import MistralConfig, MistralForCausalLM

    from spectrum_tune.training.prefix import prefix_sharing_blocker

    config = MistralConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        sliding_window=16,
    )
    model = MistralForCausalLM(config)
    assert prefix_sharing_blocker(model, 16) is None
    assert "sliding window" in prefix_sharing_blocker(model, 17)


def test_shared_layout_edge_cases_give_the_full_sequence_gradient(tokenizer, tmp_path, caplog):
    """Tokenised groups of different K (the per-row gather, not the broadcast), one of only
    one-token completions (a continuation of one column, padded to two), one whose first
    completion token carries no loss (its log-prob would come from the prompt's last position),
    prompts of different lengths: shared equals full sequences, value and gradient."""
    rows = [
        {
            "prompt_ids": [5, 6, 7, 8, 9],
            "completion_ids": [[2], [10], [11]],
            "completion_mask": [[1], [1], [1]],
            "weights": [0.5, 0.25, 0.25],
        },
        {
            "prompt_ids": [12, 13],
            "completion_ids": [[14, 15, 2], [16, 2]],
            "completion_mask": [[0, 1, 1], [1, 1]],
            "weights": [0.5, 0.5],
        },
    ]
    model = toy_model(tokenizer)
    trainer = SpectrumTrainer(
        model,
        args=spectrum_config(tmp_path, max_steps=1),
        processing_class=tokenizer,
        train_dataset=Dataset.from_list(rows),
    )
    for order in (rows, rows[::-1], rows[:1]):  # the last: one group, so the broadcast path
        batch = trainer._prepare_inputs(trainer.data_collator(order))
        assert "prefix_ids" in batch
        full = {key: value for key, value in batch.items() if not key.startswith(("prefix_", "cont_"))}
        results = []
        for inputs in (batch, full):
            model.zero_grad()
            logps, _, _ = trainer._sequence_logps(model, inputs)
            logps.sum().backward()
            grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
            results.append((logps.detach(), grads))
        (shared, shared_grads), (plain, plain_grads) = results
        torch.testing.assert_close(shared, plain, rtol=1e-6, atol=1e-6)
        for a, b in zip(shared_grads, plain_grads, strict=True):
            # summed (not length-normalised) log-probs: gradients O(1), float32 rounding ~1e-7
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
