"""SpectrumTrainer on the pretrained tiny model: the loss falls, the spread moves the right way,
and LoRA / QLoRA / full fine-tuning train, save and load; resume continues the same run."""

import math

import pytest
import torch
from datasets import Dataset
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

from spectrum_tune import SpectrumTrainer
from spectrum_tune.evaluation.metrics import js_divergence
from spectrum_tune.training.losses import sequence_logps

from ..toy import spectrum_config

pytestmark = pytest.mark.slow

PROMPT = [{"role": "user", "content": "Name a color."}]
REFERENCES = ["red", "green", "purple", "orange"]
TARGET = [0.4, 0.3, 0.2, 0.1]


def _config(tmp_path, **overrides):
    return spectrum_config(
        tmp_path,
        **{
            "per_device_train_batch_size": 1,
            "max_steps": 30,
            "learning_rate": 3e-3,
            "logging_steps": 1,
            **overrides,
        },
    )


def _train(model_dir, tmp_path, rows, peft_config=None, model=None, **overrides):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = model if model is not None else AutoModelForCausalLM.from_pretrained(model_dir)
    trainer = SpectrumTrainer(
        model,
        args=_config(tmp_path, **overrides),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    trainer.train()
    return trainer


def _distribution(trainer, model=None):
    """A model's distribution renormalised over REFERENCES (end-of-turn included), from full
    logits: independent of the trainer's fused scoring path."""
    model = model if model is not None else trainer.model
    batch = trainer.data_collator([trainer.train_dataset[0]])
    model.eval()
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    labels = batch["labels"][:, 1:]
    per_token = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, labels.clamp(min=0)[..., None])
    logps = sequence_logps(per_token[..., 0], labels != -100)
    return torch.softmax(logps, dim=0).tolist()


def _losses(trainer):
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]


def test_spectrum_matches_the_target_better_than_sft(tiny_model_dir, tmp_path):
    spectrum = _train(
        tiny_model_dir,
        tmp_path / "spectrum",
        [{"prompt": PROMPT, "references": REFERENCES, "weights": TARGET}],
    )
    losses = _losses(spectrum)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5  # the loss falls
    # SFT on the single most likely reference, same steps; scored on the same four references
    sft = _train(tiny_model_dir, tmp_path / "sft", [{"prompt": PROMPT, "references": REFERENCES[:1]}])
    js_spectrum = js_divergence(_distribution(spectrum), TARGET)
    js_sft = js_divergence(_distribution(spectrum, sft.model), TARGET)
    assert js_spectrum < js_sft
    assert js_spectrum < 0.05


def test_lora_trains_saves_and_loads(tiny_model_dir, tmp_path):
    from peft import LoraConfig, PeftModel

    rows = [{"prompt": PROMPT, "references": REFERENCES, "weights": TARGET}]
    trainer = _train(
        tiny_model_dir,
        tmp_path,
        rows,
        max_steps=3,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    trainer.save_model(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    expected = _distribution(trainer)
    reloaded = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), tmp_path / "adapter"
    )
    assert _distribution(trainer, reloaded) == pytest.approx(expected, abs=1e-5)


def test_qlora_4bit_trains_on_cpu(tiny_model_dir, tmp_path):
    from peft import LoraConfig

    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32
    )
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, quantization_config=quantization)
    assert getattr(model, "is_loaded_in_4bit", False)
    rows = [{"prompt": PROMPT, "references": REFERENCES, "weights": TARGET}]
    trainer = _train(
        tiny_model_dir,
        tmp_path,
        rows,
        model=model,
        max_steps=4,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    losses = _losses(trainer)
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]
    trainer.save_model(str(tmp_path / "adapter"))
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()


def test_full_fine_tune_saves_and_loads(tiny_model_dir, tmp_path):
    rows = [{"prompt": PROMPT, "references": REFERENCES, "weights": TARGET}]
    trainer = _train(tiny_model_dir, tmp_path, rows, max_steps=3)
    trainer.save_model(str(tmp_path / "full"))
    expected = _distribution(trainer)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "full")
    assert _distribution(trainer, reloaded) == pytest.approx(expected, abs=1e-5)


def test_resume_from_checkpoint_reaches_the_same_loss(tiny_model_dir, tmp_path):
    rows = [
        {"prompt": PROMPT, "references": REFERENCES, "weights": TARGET},
        {
            "prompt": [{"role": "user", "content": "Pick a number between 1 and 4."}],
            "references": ["1", "2", "3", "4"],
        },
        {"prompt": [{"role": "user", "content": "What day comes after Monday?"}], "references": ["Tuesday"]},
    ]
    common = dict(
        max_steps=6, per_device_train_batch_size=2, save_strategy="steps", save_steps=3, learning_rate=1e-3
    )
    straight = _train(tiny_model_dir, tmp_path / "straight", rows, **common)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    resumed = SpectrumTrainer(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir),
        args=_config(tmp_path / "resumed", **common),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    resumed.train(resume_from_checkpoint=str(tmp_path / "straight" / "checkpoint-3"))
    assert resumed.state.global_step == 6
    assert _losses(resumed)[-1] == pytest.approx(_losses(straight)[-1], rel=1e-4)
