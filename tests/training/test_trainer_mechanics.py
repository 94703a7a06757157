"""SpectrumTrainer mechanics on a random toy model: SFT equivalence, two-pass and accumulation."""

import pytest
import torch
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from spectrum_tune import SpectrumTrainer
from spectrum_tune.training.collator import SpectrumCollator

from ..toy import spectrum_config, toy_model, toy_tokenizer


def _chat(text):
    return [{"role": "user", "content": text}]


ROWS = [
    {
        "prompt": _chat("Name a color."),
        "references": ["red", "green", "blue", "yellow"],
        "weights": [0.4, 0.3, 0.2, 0.1],
    },
    {"prompt": _chat("Pick a number between 1 and 3."), "references": ["1", "2", "3"]},
    {"prompt": _chat("Pick a number between 4 and 5."), "references": ["5"]},
]


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


def _config(tmp_path, **overrides):
    return spectrum_config(
        tmp_path, **{"per_device_train_batch_size": 3, "max_steps": 1, "learning_rate": 1e-3, **overrides}
    )


def _trainer(tokenizer, tmp_path, rows=ROWS, **overrides):
    model = toy_model(tokenizer)
    return SpectrumTrainer(
        model,
        args=_config(tmp_path, **overrides),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )


def _batch(trainer, indices=None):
    rows = [trainer.train_dataset[i] for i in (indices or range(len(trainer.train_dataset)))]
    return trainer._prepare_inputs(trainer.data_collator(rows))  # on the model's device, as in training


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_single_reference_rows_match_sft_trainer_loss(tokenizer, tmp_path):
    single = [{"prompt": r["prompt"], "references": [r["references"][0]]} for r in ROWS]
    spectrum = _trainer(tokenizer, tmp_path / "a", rows=single)
    spectrum.model.train()
    loss = spectrum.compute_loss(spectrum.model, _batch(spectrum))

    sft_rows = [
        {"prompt": r["prompt"], "completion": [{"role": "assistant", "content": r["references"][0]}]}
        for r in ROWS
    ]
    sft = SFTTrainer(
        toy_model(tokenizer),
        args=SFTConfig(
            output_dir=str(tmp_path / "b"), report_to=[], bf16=False, gradient_checkpointing=False
        ),
        train_dataset=Dataset.from_list(sft_rows),
        processing_class=tokenizer,
    )
    sft.model.train()
    batch = sft.data_collator([sft.train_dataset[i] for i in range(3)])
    # TRL's chat completion ends "<|im_end|>\n"; the spectrum loss stops at the end-of-turn
    # token (the distribution is over complete outputs), so drop the trailing newline label.
    newline = tokenizer.convert_tokens_to_ids("Ċ")
    batch["labels"][batch["labels"] == newline] = -100
    expected = sft.compute_loss(sft.model, batch)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_two_pass_chunks_give_the_single_pass_gradient(tokenizer, tmp_path):
    losses, grads = [], []
    for chunk in (64, 2):
        trainer = _trainer(tokenizer, tmp_path / str(chunk), spectrum_chunk_size=chunk)
        trainer.model.train()
        loss = trainer.compute_loss(trainer.model, _batch(trainer))
        loss.backward()
        losses.append(loss.item())
        grads.append(_grads(trainer.model))
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    assert grads[0].keys() == grads[1].keys()
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, rtol=1e-5, atol=1e-7, msg=name)


@pytest.mark.parametrize("chunk", [64, 3])
def test_prefix_sharing_gives_the_naive_loss_and_gradient(tokenizer, tmp_path, chunk):
    results = []
    for sharing in (False, True):
        trainer = _trainer(
            tokenizer, tmp_path / f"{sharing}", spectrum_prefix_sharing=sharing, spectrum_chunk_size=chunk
        )
        trainer.model.train()
        batch = _batch(trainer)
        assert ("prefix_ids" in batch) == sharing
        loss = trainer.compute_loss(trainer.model, batch)
        loss.backward()
        results.append((loss.item(), _grads(trainer.model)))
    (naive_loss, naive_grads), (shared_loss, shared_grads) = results
    assert shared_loss == pytest.approx(naive_loss, rel=1e-5)
    for name, grad in naive_grads.items():
        torch.testing.assert_close(shared_grads[name], grad, rtol=1e-4, atol=1e-6, msg=name)


def test_gradient_accumulation_matches_one_big_batch(tokenizer, tmp_path):
    trainer = _trainer(tokenizer, tmp_path / "ga")
    trainer.model.train()
    full = _batch(trainer)
    trainer.compute_loss(trainer.model, full).backward()
    reference = _grads(trainer.model)
    trainer.model.zero_grad()
    parts = [_batch(trainer, [0]), _batch(trainer, [1, 2])]
    count = trainer._get_num_items_in_batch(parts, trainer.args.device)
    assert count.item() == pytest.approx(full["loss_denominator"].sum().item())
    for part in parts:
        trainer.compute_loss(trainer.model, part, num_items_in_batch=count).backward()
    for name, grad in reference.items():
        torch.testing.assert_close(trainer.model.get_parameter(name).grad, grad, rtol=1e-5, atol=1e-7)


def test_collator_keeps_groups_whole(tokenizer, tmp_path):
    trainer = _trainer(tokenizer, tmp_path / "c")
    batch = _batch(trainer)
    assert batch["group_index"].tolist() == [0, 0, 0, 0, 1, 1, 1, 2]
    assert batch["num_refs"].tolist() == [4, 3, 1]
    assert batch["weights"][1, :3].tolist() == pytest.approx([1 / 3] * 3)
    # a group's denominator is its mean number of loss tokens (reference + end-of-turn)
    for g, row in enumerate(trainer.train_dataset):
        lengths = [sum(mask) for mask in row["completion_mask"]]
        assert batch["loss_denominator"][g].item() == pytest.approx(sum(lengths) / len(lengths))
    assert isinstance(trainer.data_collator, SpectrumCollator)


def test_config_takes_trl_options_and_rejects_bad_weights(tmp_path):
    # packing / padding_free / dft apply to TRL's single-target rows (refused with groups, see
    # test_conformance); they conflict only with GEM, which scores padded rows.
    assert _config(tmp_path, packing=True).packing
    assert _config(tmp_path, loss_type="dft").loss_type == "dft"
    with pytest.raises(ValueError, match=r"gem.*packing"):
        _config(tmp_path, packing=True, spectrum_loss_type="gem")
    with pytest.raises(ValueError, match="pick one"):
        _config(tmp_path, loss_type="dft", spectrum_loss_type="gem")
    with pytest.raises(ValueError, match=">= 0"):
        _config(tmp_path, spectrum_beta=-1.0)
    with pytest.raises(ValueError, match="chunk_size"):
        _config(tmp_path, spectrum_chunk_size=0)


def test_gem_applies_to_trl_rows_by_hand(tokenizer, tmp_path):
    """TRL prompt/completion rows under spectrum_loss_type='gem': the token-mean GEM loss of their labels."""
    from spectrum_tune.training.gem import gem_token_loss

    rows = [
        {"prompt": _chat(q), "completion": [{"role": "assistant", "content": a}]}
        for q, a in (("Name a color.", "red"), ("Pick a number between 1 and 3.", "2"))
    ]
    trainer = _trainer(tokenizer, tmp_path, rows=rows, spectrum_loss_type="gem", gem_beta=0.7)
    batch = _batch(trainer)
    assert "num_refs" not in batch  # TRL's own batch
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    with torch.no_grad():
        logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    expected = gem_token_loss(logits[:, :-1], labels, 0.7, "linear").sum() / (labels != -100).sum()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_mixed_batches_accumulate_like_one_big_batch(tokenizer, tmp_path):
    """Groups and TRL rows split over micro-batches: one shared count gives the big batch's gradient."""
    keys = ("prompt", "references", "weights", "completion")
    rows = [
        *ROWS[:2],
        {
            "prompt": _chat("Pick a number between 4 and 5."),
            "completion": [{"role": "assistant", "content": "4"}],
        },
    ]
    rows = [{key: row.get(key) for key in keys} for row in rows]
    trainer = _trainer(tokenizer, tmp_path / "mixed", rows=rows)
    trainer.model.train()
    full = _batch(trainer)
    assert "sft" in full
    trainer.compute_loss(trainer.model, full).backward()
    reference = _grads(trainer.model)
    trainer.model.zero_grad()
    kinds = [bool(trainer.train_dataset[i]["completion_ids"]) for i in range(3)]
    first = kinds.index(True)
    parts = [_batch(trainer, [first]), _batch(trainer, [i for i in range(3) if i != first])]
    assert "num_refs" in parts[0] and "sft" in parts[1]
    count = trainer._get_num_items_in_batch(parts, trainer.args.device)
    expected = full["loss_denominator"].sum() + (full["sft"]["labels"][:, 1:] != -100).sum()
    assert count.item() == pytest.approx(expected.item())
    for part in parts:
        trainer.compute_loss(trainer.model, part, num_items_in_batch=count).backward()
    for name, grad in reference.items():
        torch.testing.assert_close(trainer.model.get_parameter(name).grad, grad, rtol=1e-5, atol=1e-7)
