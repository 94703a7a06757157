"""``trust_remote_code`` reaches every load, as in SFTTrainer (TRL's ``test_trust_remote_code``).

The model is a local remote-code directory built here (the toy Llama weights, a config with
``auto_map`` and two small Python files defining ``RemoteConfig`` / ``RemoteForCausalLM``), so
nothing downloads. TRL's case (tests/test_sft_trainer.py in trl): without ``trust_remote_code``
the trainer raises a ``ValueError`` matching "custom code"; with it the model is the remote class.
Before, SpectrumTrainer raised a ``SpectrumError`` (not a ValueError) and the ``train`` command
ignored the recipe's ``trust_remote_code: true`` (one-line error naming the custom code).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from spectrum_tune import SpectrumConfig, SpectrumTrainer
from spectrum_tune.cli import main
from spectrum_tune.errors import SpectrumError

from ..toy import save_toy

CONFIGURATION = """from transformers import LlamaConfig


class RemoteConfig(LlamaConfig):
    model_type = "remote-llama"
"""
MODELING = """from transformers import LlamaForCausalLM

from .configuration_remote import RemoteConfig


class RemoteForCausalLM(LlamaForCausalLM):
    config_class = RemoteConfig
"""


@pytest.fixture(scope="module")
def remote_model(tmp_path_factory) -> Path:
    path = save_toy(tmp_path_factory.mktemp("remote") / "tiny-RemoteForCausalLM")
    (path / "configuration_remote.py").write_text(CONFIGURATION)
    (path / "modeling_remote.py").write_text(MODELING)
    config = json.loads((path / "config.json").read_text())
    config.update(
        model_type="remote-llama",
        architectures=["RemoteForCausalLM"],
        auto_map={
            "AutoConfig": "configuration_remote.RemoteConfig",
            "AutoModelForCausalLM": "modeling_remote.RemoteForCausalLM",
        },
    )
    (path / "config.json").write_text(json.dumps(config))
    return path


DATASET = Dataset.from_list([{"text": "Name a color. red"}, {"text": "Pick a number between 1 and 3. 2"}])


@pytest.mark.parametrize(
    ("trainer_class", "config_class"), [(SFTTrainer, SFTConfig), (SpectrumTrainer, SpectrumConfig)]
)
def test_trust_remote_code_as_in_trl(remote_model, tmp_path, trainer_class, config_class):
    """TRL's case, for SFTTrainer (the reference) and SpectrumTrainer."""
    common = {"output_dir": str(tmp_path), "report_to": "none", "bf16": False}
    with pytest.raises(ValueError, match="custom code"):
        trainer_class(model=str(remote_model), args=config_class(**common), train_dataset=DATASET)
    trainer = trainer_class(
        model=str(remote_model), args=config_class(**common, trust_remote_code=True), train_dataset=DATASET
    )
    assert type(trainer.model).__name__ == "RemoteForCausalLM"
    # the same through model_init_kwargs
    trainer = trainer_class(
        model=str(remote_model),
        train_dataset=DATASET,
        args=config_class(**common, model_init_kwargs={"trust_remote_code": True}),
    )
    assert type(trainer.model).__name__ == "RemoteForCausalLM"


def test_the_train_command_passes_trust_remote_code(remote_model, tmp_path, capsys):
    recipe = {
        "model_name_or_path": str(remote_model),
        "dataset_name": str(tmp_path / "train.jsonl"),
        "output_dir": str(tmp_path / "run"),
        "max_steps": 1,
        "use_cpu": True,
        "bf16": False,
        "use_peft": False,
        "gradient_checkpointing": False,
        "save_strategy": "no",
        "report_to": "none",
    }
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(row) + "\n" for row in DATASET))
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))

    assert main(["train", "--config", str(path)]) == 2  # custom code is refused unless trusted
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "custom code" in error[0] and "trust_remote_code: true" in error[0], error

    assert main(["train", "--config", str(path), "--trust_remote_code", "true"]) == 0
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["architectures"] == ["RemoteForCausalLM"]


def test_a_load_error_is_both_a_spectrum_error_and_what_transformers_raised(tmp_path, remote_model):
    from spectrum_tune.models import load_model

    (save_toy(tmp_path / "no-weights") / "model.safetensors").unlink()
    with pytest.raises(SpectrumError) as missing:  # no weights file: transformers raises OSError
        load_model(str(tmp_path / "no-weights"))
    assert isinstance(missing.value, OSError)
    with pytest.raises(SpectrumError) as refused:  # custom code: transformers raises ValueError
        load_model(str(remote_model))
    assert isinstance(refused.value, ValueError)
