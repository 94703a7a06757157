"""The paths SpectrumTrainer takes so every rank and engine runs alike are exact (in one process).

- Stand-ins: where another rank holds a kind of row this rank lacks, this rank scores an empty
  stand-in of that kind (a real forward and backward); its loss and gradients must not change.
  Another rank is simulated by making the kind agreement report that some rank holds both kinds.
- DeepSpeed ZeRO-3 paths: chunks without the two-pass recompute, and GEM on the model's full
  logits, give the numbers of the default paths (the 2-process runs are in test_engines.py).
"""

from __future__ import annotations

import logging

import pytest
import torch
from datasets import Dataset

from spectrum_tune import SpectrumTrainer
from spectrum_tune.training import chunks, prefix
from spectrum_tune.training import trainer as trainer_module
from spectrum_tune.training.scoring import (
    NO_RECOMPUTE,
    gem_chunk,
    gem_chunk_full_logits,
    run_chunks,
    score_full_sequences,
)

from ..toy import spectrum_config, toy_model, toy_tokenizer


def _chat(text):
    return [{"role": "user", "content": text}]


GROUPS = [
    {"prompt": _chat("Name a color."), "references": ["red", "green", "blue"], "weights": [0.5, 0.3, 0.2]},
    {"prompt": _chat("Pick a number between 1 and 3."), "references": ["1", "2 3"]},
]
TRL = [
    {"messages": [*_chat("Name a number."), {"role": "assistant", "content": "7 8 9"}]},
    {"messages": [*_chat("Pick a color."), {"role": "assistant", "content": "yellow"}]},
]


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


def _trainer(tokenizer, tmp_path, **overrides):
    args = spectrum_config(tmp_path, per_device_train_batch_size=4, max_steps=1, **overrides)
    keys = ("prompt", "references", "weights", "messages")
    rows = Dataset.from_list([{key: row.get(key) for key in keys} for row in GROUPS + TRL])
    trainer = SpectrumTrainer(toy_model(tokenizer), args=args, train_dataset=rows, processing_class=tokenizer)
    trainer.model.train()
    # the joined dataset: the groups first, then the TRL rows
    assert [bool(trainer.train_dataset[i]["completion_ids"]) for i in range(4)] == [True, True, False, False]
    return trainer


def _loss_and_grads(trainer, rows):
    batch = trainer.data_collator([trainer.train_dataset[i] for i in rows])
    trainer.model.zero_grad()
    calls = []
    handle = trainer.model.register_forward_hook(lambda *_: calls.append(1))
    try:
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
    finally:
        handle.remove()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return loss.detach(), grads, len(calls)


@pytest.mark.parametrize("rows", [[0, 1], [2, 3]], ids=["groups-only", "trl-only"])
@pytest.mark.parametrize("loss_type", ["nll", "gem"])
def test_stand_ins_for_kinds_another_rank_holds_change_nothing(
    tokenizer, tmp_path, monkeypatch, rows, loss_type
):
    trainer = _trainer(tokenizer, tmp_path, spectrum_loss_type=loss_type)
    alone = _loss_and_grads(trainer, rows)

    # another rank holds both kinds and one chunk more on every path: this rank adds the stand-in of
    # the kind it lacks and empty chunks (GEM's included; with no group here, the prompt encode's too)
    def agree(counts, device, op="max"):
        if op == "sum":
            return [1, 1]
        return [count + 1 if i != 1 else count for i, count in enumerate(counts)]

    monkeypatch.setattr(chunks, "agree_counts", agree)
    monkeypatch.setattr(trainer_module, "agree_counts", agree)
    padded = _loss_and_grads(trainer, rows)
    assert padded[2] > alone[2]  # the stand-in made real model calls
    torch.testing.assert_close(padded[0], alone[0], rtol=1e-6, atol=0)
    assert padded[1].keys() == alone[1].keys()
    for name, grad in alone[1].items():
        torch.testing.assert_close(padded[1][name], grad, rtol=1e-6, atol=1e-9)


def _chunk_inputs(tokenizer, tmp_path):
    trainer = _trainer(tokenizer, tmp_path)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in (0, 1)])
    return trainer.model, [batch[key] for key in ("input_ids", "attention_mask", "labels")]


def test_chunks_without_recompute_give_the_two_pass_numbers(tokenizer, tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(prefix, "_NOTICED", set())
    model, tensors = _chunk_inputs(tokenizer, tmp_path)
    results = []
    for recompute in (True, False):
        model.zero_grad()
        with caplog.at_level(logging.WARNING):
            parts, anchor = run_chunks(
                score_full_sequences,
                (model,),
                tensors,
                2,
                calls=4,
                empty=chunks.empty_chunk(tensors[0].device, 0),
                recompute=recompute,
            )
        logps = torch.cat([part[0] for part in parts])
        (logps.sum() + anchor).backward()
        results.append((logps.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(results[1][0], results[0][0])
    for plain, two_pass in zip(results[1][1], results[0][1], strict=True):
        torch.testing.assert_close(plain, two_pass)
    assert caplog.text.count(NO_RECOMPUTE) == 1
    with pytest.raises(ValueError, match="checkpoint_all"):
        run_chunks(score_full_sequences, (model,), tensors, 2, checkpoint_all=True, recompute=False)


def test_gem_on_full_logits_gives_the_chunked_head_numbers(tokenizer, tmp_path):
    model, tensors = _chunk_inputs(tokenizer, tmp_path)
    shared = (model, model.base_model, model.get_output_embeddings(), 0.7, "logsigmoid")
    results = []
    for score in (gem_chunk, gem_chunk_full_logits):
        model.zero_grad()
        out = score(*shared, *tensors)
        out[0].sum().backward()
        results.append(([value.detach() for value in out], [p.grad.clone() for p in model.parameters()]))
    for full, chunked in zip(results[1][0], results[0][0], strict=True):
        torch.testing.assert_close(full, chunked, rtol=1e-5, atol=1e-6)
    for full, chunked in zip(results[1][1], results[0][1], strict=True):
        torch.testing.assert_close(full, chunked, rtol=1e-5, atol=1e-6)
