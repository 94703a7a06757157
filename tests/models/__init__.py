"""Tests on the real offline models (run where their registry packages are installed)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from spectrum_tune.errors import SpectrumError
from spectrum_tune.models import model_location


def installed(name: str, label: str) -> tuple[str | None, str | None, pytest.MarkDecorator]:
    """``(directory, gguf file, skip marker)`` of an offline model; the marker skips, saying why,
    only when its packages are absent."""
    try:
        directory, gguf_file = model_location(name)
    except SpectrumError as error:
        return None, None, pytest.mark.skipif(True, reason=f"{label} absent: {error}")
    return directory, gguf_file, pytest.mark.skipif(False, reason="")


def assert_one_lora_step_trains(model, tokenizer, rows, tmp_path, max_length: int) -> None:
    """One SpectrumTrainer LoRA step on ``rows``: a finite positive loss that updates the adapter."""
    from datasets import Dataset
    from peft import LoraConfig

    from spectrum_tune import SpectrumTrainer

    from ..toy import spectrum_config

    torch.manual_seed(0)
    config = spectrum_config(
        tmp_path,
        per_device_train_batch_size=2,
        max_steps=1,
        learning_rate=1e-3,
        logging_steps=1,
        max_length=max_length,
    )
    trainer = SpectrumTrainer(
        copy.deepcopy(model),
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]),
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert losses and all(math.isfinite(loss) and loss > 0 for loss in losses)
    assert any(
        not torch.equal(p.detach(), before[n]) for n, p in trainer.model.named_parameters() if p.requires_grad
    )  # the adapter moved
