"""A new user's first hour (issue 17): model names everywhere, one-line errors, quiet runs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from spectrum_tune import models
from spectrum_tune.errors import SpectrumError

from ..toy import spectrum_config
from .test_cli import _error, _recipe

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def data_file(tmp_path):
    path = tmp_path / "train.jsonl"
    rows = [
        {"prompt": [{"role": "user", "content": "Name a color."}], "references": ["red", "blue"]},
        {"prompt": [{"role": "user", "content": "Pick a number between 1 and 3."}], "references": ["2"]},
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


# --------------------------------------------------------------------------------------------
# 1. every model name the CLI takes, in every place (trainer, validate, eval)
# --------------------------------------------------------------------------------------------


@pytest.fixture()
def fake_offline(tmp_path, monkeypatch):
    """The smollm2 alias pointed at a directory holding one (empty) GGUF file."""
    directory = tmp_path / "offline"
    directory.mkdir()
    (directory / "M.Q4.gguf").write_bytes(b"")
    monkeypatch.setattr(models, "model_location", lambda name="smollm2": (directory, "M.Q4.gguf"))
    return directory


def test_alias_implies_its_gguf_file(fake_offline):
    assert models.resolve_model(models.SMOLLM2_ALIAS) == (str(fake_offline), "M.Q4.gguf")
    assert models.resolve_model(models.SMOLLM2_ALIAS, "M.Q4.gguf") == (str(fake_offline), "M.Q4.gguf")
    with pytest.raises(SpectrumError, match=r"gguf_file 'other.gguf' is not in .*M\.Q4\.gguf"):
        models.resolve_model(models.SMOLLM2_ALIAS, "other.gguf")


def test_gguf_directory_implies_its_only_file(tmp_path):
    (tmp_path / "a.gguf").write_bytes(b"")
    assert models.resolve_model(str(tmp_path)) == (str(tmp_path), "a.gguf")
    (tmp_path / "b.gguf").write_bytes(b"")
    with pytest.raises(SpectrumError, match=r"several GGUF files .*pass gguf_file"):
        models.resolve_model(str(tmp_path))
    assert models.resolve_model(str(tmp_path), "b.gguf") == (str(tmp_path), "b.gguf")
    with pytest.raises(SpectrumError, match=r"a\.gguf' is a file; give its directory and gguf_file=a\.gguf$"):
        models.resolve_model(str(tmp_path / "a.gguf"))


def test_validate_and_eval_pass_the_alias_gguf_file(fake_offline, monkeypatch, data_file, capsys):
    seen = []

    def fake_from_pretrained(path, gguf_file=None, **kwargs):
        seen.append((path, gguf_file))
        raise OSError("stop here")

    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setattr(AutoTokenizer, "from_pretrained", fake_from_pretrained)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake_from_pretrained)
    err = _error(capsys, ["validate", str(data_file), "--model", models.SMOLLM2_ALIAS])
    assert err == "error: cannot load model 'spectrum-tune/smollm2': stop here"
    from spectrum_tune.evaluation.runner import load_for_eval

    with pytest.raises(SpectrumError, match="stop here"):
        load_for_eval(models.SMOLLM2_ALIAS)
    assert seen == [(str(fake_offline), "M.Q4.gguf")] * 2


def test_model_object_has_its_gguf_marker_cleared(toy_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(toy_dir)
    model.hf_quantizer = SimpleNamespace(quantization_config=SimpleNamespace(quant_method="gguf"))
    model.is_quantized = True
    assert models.clear_gguf_marker(model).hf_quantizer is None and not model.is_quantized
    bnb = SimpleNamespace(quantization_config=SimpleNamespace(quant_method="bitsandbytes"))
    model.hf_quantizer = bnb
    assert models.clear_gguf_marker(model).hf_quantizer is bnb  # real quantization stays


def test_trainer_takes_a_directory_with_model_init_kwargs(toy_dir, data_file, tmp_path):
    import torch

    from spectrum_tune import SpectrumTrainer, load_multiref

    config = spectrum_config(tmp_path, max_steps=1, model_init_kwargs={"dtype": "bfloat16"})
    trainer = SpectrumTrainer(toy_dir, args=config, train_dataset=load_multiref(str(data_file)))
    assert next(trainer.model.parameters()).dtype == torch.bfloat16  # the kwargs were applied
    assert config.model_init_kwargs == {"dtype": "bfloat16"}  # and the user's config is unchanged
    assert trainer.data_collator.prefix_sharing  # gradient_checkpointing=False keeps it on


def test_trainer_takes_a_gguf_directory_with_model_init_kwargs(toy_dir, data_file, tmp_path, monkeypatch):
    """The GGUF path without a 100 MB file: from_pretrained must get the directory and gguf_file
    (TRL alone fails on AutoConfig), and the dequantized model's GGUF marker must be cleared."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from spectrum_tune import SpectrumTrainer, load_multiref

    gguf_dir = tmp_path / "gguf"
    gguf_dir.mkdir()
    (gguf_dir / "m.Q4.gguf").write_bytes(b"")
    calls = []
    real_model, real_tokenizer = AutoModelForCausalLM.from_pretrained, AutoTokenizer.from_pretrained

    def fake_model(path, gguf_file=None, **kwargs):
        calls.append(("model", path, gguf_file))
        model = real_model(toy_dir, **kwargs)
        model.hf_quantizer = SimpleNamespace(quantization_config=SimpleNamespace(quant_method="gguf"))
        return model

    def fake_tokenizer(path, gguf_file=None, **kwargs):
        calls.append(("tokenizer", path, gguf_file))
        return real_tokenizer(toy_dir)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake_model)
    monkeypatch.setattr(AutoTokenizer, "from_pretrained", fake_tokenizer)
    config = spectrum_config(tmp_path, max_steps=1, model_init_kwargs={"gguf_file": "m.Q4.gguf"})
    trainer = SpectrumTrainer(str(gguf_dir), args=config, train_dataset=load_multiref(str(data_file)))
    assert sorted(calls) == [("model", str(gguf_dir), "m.Q4.gguf"), ("tokenizer", str(gguf_dir), "m.Q4.gguf")]
    assert trainer.model.hf_quantizer is None


# --------------------------------------------------------------------------------------------
# 3. every recipe, CLI and data error is one line naming the file (and line or key)
# --------------------------------------------------------------------------------------------


def test_bad_recipe_value_names_file_and_key(tmp_path, toy_dir, data_file, capsys):
    recipe = _recipe(tmp_path, toy_dir, data_file, learning_rate="fast")
    err = _error(capsys, ["train", "--config", str(recipe)])
    assert err == (
        f"error: recipe '{recipe}': learning_rate: invalid float value 'fast'; give a number, e.g. 2.0e-4"
    )
    good = str(_recipe(tmp_path, toy_dir, data_file))
    err = _error(capsys, ["train", "--config", good, "--max_steps", "x"])
    assert err.startswith("error: --max_steps: invalid int value 'x'")  # the flag, not the file


def test_out_of_range_recipe_value_is_one_line(tmp_path, toy_dir, data_file, capsys):
    recipe = _recipe(tmp_path, toy_dir, data_file, lora_r=-4)
    err = _error(capsys, ["train", "--config", str(recipe)])
    assert err == f"error: recipe '{recipe}': lora_r must be a positive whole number (e.g. 16), got -4"
    assert not (tmp_path / "run").exists()


def test_config_check_names_the_recipe(tmp_path, toy_dir, data_file, capsys):
    recipe = _recipe(tmp_path, toy_dir, data_file, spectrum_alpha=-1.0)
    assert f"recipe '{recipe}': spectrum_alpha and spectrum_beta must be >= 0" in _error(
        capsys, ["train", "--config", str(recipe)]
    )


def test_cli_flag_errors_are_one_line(tmp_path, capsys):
    assert "unknown argument(s) --bogus" in _error(
        capsys, ["train", "--config", str(ROOT / "recipes/tiny-spectrum.yaml"), "--bogus", "3"]
    )
    err = _error(capsys, ["eval", "--model", "x"])
    assert "required: --tasks, --out" in err and "usage" not in capsys.readouterr().err
    assert "unknown command 'trian'" in _error(capsys, ["trian"])


def test_mixed_prompt_kinds_name_the_line(tmp_path, capsys):
    bad = tmp_path / "bad4_mixed.jsonl"
    bad.write_text(
        '{"prompt": "x", "references": ["a", "b"]}\n'
        '{"prompt": [{"role": "user", "content": "y"}], "references": ["c", "d"]}\n'
    )
    err = _error(capsys, ["validate", str(bad)])
    assert err == (
        f"error: {bad}:2: has a chat-message prompt but {bad}:1 has a string prompt; "
        "use one kind of prompt in a dataset"
    )


# --------------------------------------------------------------------------------------------
# 4. no warning text on a normal run; real user warnings kept
# --------------------------------------------------------------------------------------------


def test_config_does_not_warn_about_gradient_checkpointing(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        spectrum_config(tmp_path)
        spectrum_config(tmp_path, gradient_checkpointing=True)
    assert not [w for w in caught if "checkpointing" in str(w.message)], [str(w.message) for w in caught]
    with pytest.warns(FutureWarning, match="pad_token"):  # a deprecated setting the user chose still warns
        spectrum_config(tmp_path, pad_token="<|pad|>")


def test_library_noise_is_filtered_and_the_rest_kept(caplog):
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING, logger=logger.name):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: offline")
        logger.warning("something the user must see")
    assert [r.getMessage() for r in caplog.records] == ["something the user must see"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        from spectrum_tune import errors

        errors._installed = False
        errors.quiet_library_noise()
        noise = "Could not find a config file in /x - will assume that the vocabulary was not modified."
        warnings.warn(noise, UserWarning, stacklevel=1)
        warnings.warn("a real user warning", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a real user warning"]


def test_cli_train_stderr_has_no_warnings(tmp_path, toy_dir, data_file):
    recipe = _recipe(tmp_path, toy_dir, data_file, max_steps=1)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "spectrum_tune.cli", "train", "--config", str(recipe)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    noisy = [line for line in result.stderr.splitlines() if "warn" in line.lower()]
    assert not noisy, noisy
    assert yaml.safe_load((tmp_path / "run" / "spectrum_recipe.yaml").read_text())["max_steps"] == 1
