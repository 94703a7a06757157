"""Every model family: reference layout, in-context spans, prefix sharing, sample-mode stops.

Each family is a tiny random model built here with a tokenizer and chat template like the
family's own (:mod:`tests.families.builders`), so the checks run on the end-of-turn tokens,
headers, trailing text and stop lists the real checkpoints use, where ``tokenizer.eos_token``
is often not what ends an assistant turn.
"""

from __future__ import annotations

import logging

import pytest
import torch

from spectrum_tune.evaluation.sample import generate_samples
from spectrum_tune.training.data import incontext_messages
from spectrum_tune.training.tokenize import render_incontext, tokenize_group

from .builders import FAMILIES, build_model, build_tokenizer

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    pytest.mark.parametrize("family", FAMILIES, ids=[family.name for family in FAMILIES]),
]
REFERENCES = ["red", "blue green"]


def _prompt(family, text="Name a color."):
    return [{"role": "user", "content": text}] if family.template else text


def _ids(tokenizer, tokens):
    return tokenizer.convert_tokens_to_ids(list(tokens))


def test_references_end_with_the_familys_end_of_turn(family):
    tokenizer = build_tokenizer(family)
    end = tokenizer.convert_tokens_to_ids(family.end_of_turn)
    if family.template:
        from spectrum_tune.training.chat import end_of_turn_id

        assert end_of_turn_id(tokenizer) == end
    group = tokenize_group(
        {"prompt": _prompt(family), "references": REFERENCES, "weights": [0.5, 0.5]},
        tokenizer,
        max_length=None,
    )
    for reference, ids in zip(REFERENCES, group["completion_ids"], strict=True):
        # exactly the content and the one token the model emits to end its turn: no trailing
        # newline or EOS, no reasoning block
        assert ids[-1] == end and end not in ids[:-1]
        assert tokenizer.decode(ids[:-1]) == reference
    if family.template:
        prompt_text = tokenizer.decode(group["prompt_ids"])
        full = tokenizer.apply_chat_template(
            [*_prompt(family), {"role": "assistant", "content": "red"}], tokenize=False, enable_thinking=False
        )
        # the prompt and the reference are the template's own rendering, split at the content
        assert full.startswith(prompt_text + "red" + family.end_of_turn)


def test_incontext_loss_falls_on_each_output_and_its_end_of_turn(family):
    tokenizer = build_tokenizer(family)
    # outputs that also occur in the ChatML role header "output": a substring search finds them there
    messages = incontext_messages(["t", "u", "p"], description="Colors.")
    if not family.incontext:
        with pytest.raises(Exception, match=r"roles|render|template|alternate"):
            render_incontext(messages, tokenizer, max_length=None)
        return
    rendered = render_incontext(messages, tokenizer, max_length=None)
    ids = rendered["completion_ids"][0]
    scored = [token for token, hit in zip(ids, rendered["completion_mask"][0], strict=True) if hit]
    eot = family.end_of_turn
    assert tokenizer.convert_ids_to_tokens(scored) == ["t", eot, "u", eot, "p", eot]


def _loss_and_grads(trainer, model, batch):
    model.zero_grad()
    loss = trainer.compute_loss(model, batch)
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_prefix_sharing_equals_full_sequences_or_falls_back(family, tmp_path, caplog):
    from datasets import Dataset

    from spectrum_tune import SpectrumTrainer

    from ..toy import spectrum_config

    tokenizer = build_tokenizer(family)
    model = build_model(family, tokenizer)
    # a long system prompt: sequences of ~30-40 tokens, past phi3's (tiny) longrope threshold
    system = "You are a helpful assistant . Pick a number between 1 and 10 and name a color ."
    prompts = (
        [{"role": "system", "content": system}, *_prompt(family)]
        if family.template and family.name not in ("mistral", "gemma2", "gemma3")
        else _prompt(family, system + " Name a color.")
    )
    rows = [
        {"prompt": prompts, "references": ["red", "blue green", "yellow 1 2"]},
        {"prompt": _prompt(family, "Pick a number."), "references": ["7", "8 9"]},
    ]
    trainer = SpectrumTrainer(
        model,
        args=spectrum_config(tmp_path, spectrum_chunk_size=2),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i] for i in range(2)]))
    assert "prefix_ids" in batch
    model.train()
    with caplog.at_level(logging.WARNING, logger="spectrum_tune"):
        shared_loss, shared_grads = _loss_and_grads(trainer, model, batch)
    full_batch = {key: value for key, value in batch.items() if not key.startswith(("prefix_", "cont_"))}
    full_loss, full_grads = _loss_and_grads(trainer, model, full_batch)
    torch.testing.assert_close(shared_loss, full_loss, rtol=1e-5, atol=1e-6)
    for shared, full in zip(shared_grads, full_grads, strict=True):
        torch.testing.assert_close(shared, full, rtol=1e-4, atol=1e-6)
    notices = [
        record.getMessage() for record in caplog.records if "prefix sharing off" in record.getMessage()
    ]
    if family.prefix_fallback:
        assert len(notices) == 1 and family.prefix_fallback in notices[0]
    else:
        assert not notices


def _tune(model, tokenizer, family, steps=150, lr=1e-2):
    """Teach the tiny model to answer "red" or "blue" (then end its turn) to one prompt.

    Trained to convergence, not to the edge of it: with lr 3e-2 and 80 steps the gpt2 model sat at
    12-13 of 16 valid samples, and a different CPU's rounding moved it across the test's 80 %."""
    group = tokenize_group(
        {"prompt": _prompt(family), "references": ["red", "blue"], "weights": [0.5, 0.5]},
        tokenizer,
        max_length=None,
    )
    sequences = [group["prompt_ids"] + ids for ids in group["completion_ids"]]
    width = max(map(len, sequences))
    input_ids = torch.tensor([s + [tokenizer.pad_token_id] * (width - len(s)) for s in sequences])
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences])
    labels = input_ids.masked_fill(mask == 0, -100)
    labels[:, : len(group["prompt_ids"])] = -100
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model(input_ids=input_ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
    return model.eval()


def test_samples_stop_at_the_end_of_turn_and_are_valid(family):
    tokenizer = build_tokenizer(family)
    model = _tune(build_model(family, tokenizer), tokenizer, family)
    samples = generate_samples(model, tokenizer, _prompt(family), 16, max_new_tokens=6, stop=(), seed=0)
    valid = sum(sample in ("red", "blue") for sample in samples) / len(samples)
    # decoded without special tokens and cut at the family's stop list plus its end-of-turn
    assert valid >= 0.8, samples
