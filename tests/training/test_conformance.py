"""SpectrumTrainer against trl.SFTTrainer on the cases of TRL's own SFT tests (tests/test_sft_trainer.py).

Each case builds both trainers on the same tiny random model (llama, qwen2, gpt2, qwen3_moe, built
here) and the same in-memory dataset of one of TRL's schemas, and asserts that SpectrumTrainer
prepares the same tokens and labels and computes SFTTrainer's loss (1e-6) on the same batch.
Multi-reference rows, mixed datasets and the refusals are checked against hand-computed values.
"""

import copy
import math

import pytest
import torch
from datasets import Dataset, IterableDataset
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3MoeConfig,
    Qwen3MoeForCausalLM,
    TrainerCallback,
    TrainingArguments,
)
from trl import SFTConfig, SFTTrainer

from spectrum_tune import SpectrumConfig, SpectrumTrainer
from spectrum_tune.training.data import DataError

from ..toy import toy_tokenizer

# A ChatML template with TRL's {% generation %} markers (assistant_only_loss), tools and a
# `greeting` template variable (chat_template_kwargs), so one template serves every case.
TEMPLATE = (
    "{% if tools %}{{ '<|im_start|>system\\n' + tools | map(attribute='name') | join(' ') }}"
    "{{ '<|im_end|>\\n' }}{% endif %}"
    "{% if greeting is defined %}{{ '<|im_start|>system\\n' + greeting + '<|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}"
    "{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
QUESTIONS = ["Name a color.", "Pick a number between 1 and 3.", "Pick a number between 4 and 5."]
ANSWERS = ["red", "2", "5"]


def _user(text):
    return [{"role": "user", "content": text}]


def _assistant(text):
    return [{"role": "assistant", "content": text}]


DATASETS = {
    "standard_language_modeling": [{"text": f"{q} {a}"} for q, a in zip(QUESTIONS, ANSWERS, strict=True)],
    "conversational_language_modeling": [
        {"messages": _user(q) + _assistant(a)} for q, a in zip(QUESTIONS, ANSWERS, strict=True)
    ],
    "standard_prompt_completion": [
        {"prompt": q, "completion": f" {a}"} for q, a in zip(QUESTIONS, ANSWERS, strict=True)
    ],
    "conversational_prompt_completion": [
        {"prompt": _user(q), "completion": _assistant(a)} for q, a in zip(QUESTIONS, ANSWERS, strict=True)
    ],
    "pretokenized": [
        {"input_ids": [5, 6, 7, 8, 9], "completion_mask": [0, 0, 1, 1, 1]},
        {"input_ids": [10, 11, 12], "completion_mask": [0, 1, 1]},
    ],
    "multi_message_completion": [
        {"prompt": _user(q), "completion": _assistant(a) + _user("Again.") + _assistant(a)}
        for q, a in zip(QUESTIONS, ANSWERS, strict=True)
    ],
    "chat_template_kwargs": [
        {"messages": _user(q) + _assistant(a), "chat_template_kwargs": {"greeting": "Hello"}}
        for q, a in zip(QUESTIONS, ANSWERS, strict=True)
    ],
    "tools": [
        {
            "prompt": _user(q),
            "completion": _assistant(a),
            "tools": '[{"name": "pick", "description": "d", "parameters": {}}]',
        }
        for q, a in zip(QUESTIONS, ANSWERS, strict=True)
    ],
}
MULTIREF = [
    {"prompt": _user("Name a color."), "references": ["red", "green", "blue"], "weights": [0.5, 0.3, 0.2]},
    {"prompt": _user("Pick a number between 1 and 3."), "references": ["1", "2", "3"]},
]


@pytest.fixture(scope="module")
def tokenizer():
    tokenizer = toy_tokenizer()
    tokenizer.chat_template = TEMPLATE
    return tokenizer


def _model(arch, tokenizer, seed=0):
    torch.manual_seed(seed)
    vocab, pad, eos = len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id
    small = dict(
        vocab_size=vocab,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=128,
        pad_token_id=pad,
        eos_token_id=eos,
        bos_token_id=None,
    )
    if arch == "llama":
        return LlamaForCausalLM(LlamaConfig(**small))
    if arch == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**small))
    if arch == "qwen3_moe":
        return Qwen3MoeForCausalLM(
            Qwen3MoeConfig(
                **small,
                head_dim=8,
                num_experts=4,
                num_experts_per_tok=2,
                moe_intermediate_size=16,
                router_aux_loss_coef=0.05,
            )
        )
    # No dropout: both trainers' forwards must see the same network.
    return GPT2LMHeadModel(
        GPT2Config(
            vocab_size=vocab,
            n_embd=16,
            n_layer=1,
            n_head=2,
            n_positions=128,
            pad_token_id=pad,
            eos_token_id=eos,
            bos_token_id=eos,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
        )
    )


def _args(config_class, tmp_path, **overrides):
    values = dict(
        output_dir=str(tmp_path),
        report_to=[],
        save_strategy="no",
        gradient_checkpointing=False,
        bf16=False,
        use_cpu=True,
        max_steps=1,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        seed=0,
        logging_steps=1,
        dataloader_pin_memory=False,
    )
    return config_class(**{**values, **overrides})


def _dataset(rows):
    """A dataset whose rows may have different fields (absent = None, as in a JSONL loaded by `datasets`)."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return Dataset.from_list([{key: row.get(key) for key in keys} for row in rows])


def _trainers(arch, tokenizer, tmp_path, rows, trainer_kwargs=None, **overrides):
    """SFTTrainer and SpectrumTrainer on the same model weights, data and arguments."""
    made = []
    for trainer_class, config_class in ((SFTTrainer, SFTConfig), (SpectrumTrainer, SpectrumConfig)):
        made.append(
            trainer_class(
                _model(arch, tokenizer),
                args=_args(config_class, tmp_path / config_class.__name__, **overrides),
                train_dataset=rows if not isinstance(rows, list) else _dataset(rows),
                processing_class=copy.deepcopy(tokenizer),
                **(trainer_kwargs or {}),
            )
        )
    return made


def _spectrum(tokenizer, tmp_path, rows, arch="llama", **overrides):
    return SpectrumTrainer(
        _model(arch, tokenizer),
        processing_class=copy.deepcopy(tokenizer),
        args=_args(SpectrumConfig, tmp_path, **overrides),
        train_dataset=_dataset(rows),
    )


def _batch_loss(trainer, rows=None):
    rows = rows if rows is not None else [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    batch = trainer._prepare_inputs(trainer.data_collator(rows))
    trainer.model.train()
    return trainer.compute_loss(trainer.model, batch).item()


CASES = [
    ("standard_language_modeling", "llama", {}),
    ("conversational_language_modeling", "qwen2", {}),
    ("conversational_language_modeling", "llama", {"assistant_only_loss": True}),
    ("standard_prompt_completion", "gpt2", {}),
    ("conversational_prompt_completion", "llama", {"completion_only_loss": False}),
    ("conversational_prompt_completion", "qwen2", {"max_length": 22}),
    ("pretokenized", "llama", {}),
    ("multi_message_completion", "gpt2", {}),
    ("chat_template_kwargs", "qwen2", {}),
    ("tools", "llama", {}),
    ("standard_language_modeling", "llama", {"packing": True, "max_length": 16}),
    (
        "standard_language_modeling",
        "qwen2",
        {"packing": True, "packing_strategy": "wrapped", "max_length": 8},
    ),
    ("standard_prompt_completion", "llama", {"pad_to_multiple_of": 8}),
    ("conversational_prompt_completion", "llama", {"padding_free": True, "max_length": None}),
    ("standard_prompt_completion", "qwen2", {"loss_type": "dft"}),
    ("conversational_language_modeling", "qwen3_moe", {"router_aux_loss_coef": 0.05}),
]


@pytest.mark.parametrize("name, arch, overrides", CASES, ids=[f"{n}-{a}-{'-'.join(o)}" for n, a, o in CASES])
def test_trl_rows_get_sft_trainers_tokens_and_loss(tokenizer, tmp_path, name, arch, overrides):
    sft, spectrum = _trainers(arch, tokenizer, tmp_path, DATASETS[name], **overrides)
    for column in ("input_ids", "labels"):
        assert spectrum.train_dataset[column] == sft.train_dataset[column]
    assert _batch_loss(spectrum) == pytest.approx(_batch_loss(sft), abs=1e-6)


def test_formatting_func_rows_match(tokenizer, tmp_path):
    rows = [{"question": q, "answer": a} for q, a in zip(QUESTIONS, ANSWERS, strict=True)]

    def formatting(row):
        return f"Q: {row['question']} A: {row['answer']}"

    kwargs = {"formatting_func": formatting}
    sft, spectrum = _trainers("llama", tokenizer, tmp_path, rows, trainer_kwargs=kwargs)
    assert spectrum.train_dataset["input_ids"] == sft.train_dataset["input_ids"]
    assert _batch_loss(spectrum) == pytest.approx(_batch_loss(sft), abs=1e-6)


def test_tools_and_template_kwargs_reach_multireference_prompts(tokenizer, tmp_path):
    tools = '[{"name": "pick", "description": "d", "parameters": {}}]'
    # The first row has neither: the column must still reach the second.
    rows = [MULTIREF[1], {**MULTIREF[0], "tools": tools, "chat_template_kwargs": {"greeting": "Hello"}}]
    with_extra = _spectrum(tokenizer, tmp_path / "a", rows).train_dataset[1]
    plain = _spectrum(tokenizer, tmp_path / "b", MULTIREF[:1]).train_dataset[0]
    text = tokenizer.decode(with_extra["prompt_ids"])
    assert text.startswith("<|im_start|>system\npick<|im_end|>\n<|im_start|>system\nHello<|im_end|>")
    assert text.endswith(tokenizer.decode(plain["prompt_ids"]))
    assert with_extra["completion_ids"] == plain["completion_ids"]


def test_training_matches_with_checkpointing_callbacks_and_plain_training_arguments(tokenizer, tmp_path):
    """Two steps with gradient checkpointing: same logged losses; a callback sees both runs."""

    class Recorder(TrainerCallback):
        def __init__(self):
            self.losses = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                self.losses.append(logs["loss"])

    runs = []
    for trainer_class in (SFTTrainer, SpectrumTrainer):
        recorder = Recorder()
        args = TrainingArguments(
            output_dir=str(tmp_path / trainer_class.__name__),
            report_to=[],
            use_cpu=True,
            save_strategy="no",
            max_steps=2,
            per_device_train_batch_size=2,
            seed=0,
            logging_steps=1,
            gradient_checkpointing=True,
            dataloader_pin_memory=False,
        )
        trainer = trainer_class(
            _model("llama", tokenizer),
            args=args,
            callbacks=[recorder],
            train_dataset=Dataset.from_list(DATASETS["conversational_prompt_completion"]),
            processing_class=copy.deepcopy(tokenizer),
        )
        assert isinstance(trainer.args, SFTConfig)
        if trainer_class is SpectrumTrainer:  # an SFTConfig converts too, its token fields intact
            config = SFTConfig(**{**args.to_dict(), "hub_token": None, "pad_token": "<|pad|>"})
            converted = SpectrumTrainer(
                _model("llama", tokenizer),
                args=config,
                processing_class=tokenizer,
                train_dataset=Dataset.from_list(MULTIREF),
            ).args
            assert isinstance(converted, SpectrumConfig) and converted.pad_token == "<|pad|>"
        trainer.train()
        runs.append(recorder.losses)
    assert len(runs[1]) == 2
    assert runs[1] == pytest.approx(runs[0], abs=1e-6)


def test_model_init_kwargs_and_iterable_dataset(tokenizer, tmp_path):
    path = tmp_path / "model"
    _model("qwen2", tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)

    def stream():
        yield from DATASETS["conversational_prompt_completion"]

    losses = []
    for trainer_class, config_class in ((SFTTrainer, SFTConfig), (SpectrumTrainer, SpectrumConfig)):
        trainer = trainer_class(
            str(path),
            args=_args(
                config_class,
                tmp_path / config_class.__name__,
                max_steps=2,
                per_device_train_batch_size=3,
                model_init_kwargs={"dtype": torch.float32},
            ),
            train_dataset=IterableDataset.from_generator(stream),
        )
        trainer.train()
        losses.append([e["loss"] for e in trainer.state.log_history if "loss" in e])
    assert losses[1] == pytest.approx(losses[0], abs=1e-6)


def _metrics(eval_pred):
    predictions, labels = eval_pred
    mask = labels[:, 1:] != -100
    return {"token_accuracy": float((predictions[:, :-1] == labels[:, 1:])[mask].mean())}


def _argmax(logits, labels):
    return logits.argmax(-1)


def test_compute_metrics_predict_and_best_model(tokenizer, tmp_path):
    results = []
    mixed = MULTIREF + DATASETS["conversational_prompt_completion"]
    for rows in (DATASETS["conversational_prompt_completion"], None):
        for trainer_class, config_class in ((SFTTrainer, SFTConfig), (SpectrumTrainer, SpectrumConfig)):
            if rows is None and trainer_class is SFTTrainer:
                continue  # multi-reference (mixed) rows: SpectrumTrainer only
            data = _dataset(rows if rows is not None else mixed)
            trainer = trainer_class(
                _model("llama", tokenizer),
                processing_class=copy.deepcopy(tokenizer),
                args=_args(
                    config_class,
                    tmp_path / config_class.__name__,
                    max_steps=2,
                    eval_strategy="steps",
                    eval_steps=1,
                    save_strategy="steps",
                    save_steps=1,
                    load_best_model_at_end=True,
                    metric_for_best_model="token_accuracy",
                    per_device_eval_batch_size=4,
                ),
                train_dataset=data,
                eval_dataset=data,
                compute_metrics=_metrics,
                preprocess_logits_for_metrics=_argmax,
            )
            trainer.train()
            metrics = trainer.evaluate()
            predictions = trainer.predict(trainer.eval_dataset)
            assert predictions.predictions is not None
            assert predictions.predictions.shape == predictions.label_ids.shape
            results.append((metrics["eval_token_accuracy"], metrics["eval_loss"], trainer.state.best_metric))
    assert results[1] == pytest.approx(results[0], abs=1e-6)
    assert results[2][0] is not None and 0 <= results[2][0] <= 1


def test_evaluate_takes_raw_datasets_by_name(tokenizer, tmp_path):
    """evaluate() on a dict of raw datasets: TRL rows give SFTTrainer's eval loss; groups evaluate too."""
    trl_rows = Dataset.from_list(DATASETS["conversational_prompt_completion"])
    sft, spectrum = _trainers(
        "llama",
        tokenizer,
        tmp_path,
        DATASETS["conversational_prompt_completion"],
        per_device_eval_batch_size=4,
    )
    expected = sft.evaluate(eval_dataset={"trl": trl_rows})["eval_trl_loss"]
    metrics = spectrum.evaluate(eval_dataset={"trl": trl_rows, "groups": _dataset(MULTIREF)})
    assert metrics["eval_trl_loss"] == pytest.approx(expected, abs=1e-6)
    assert math.isfinite(metrics["eval_groups_loss"]) and metrics["eval_groups_loss"] > 0


def _group_loss(logps, weights):
    """Spectrum loss (alpha = beta = 1) of one group by hand: -logsumexp(s) + KL(w || softmax(s))."""
    mass = math.log(sum(math.exp(s) for s in logps))
    q = [math.exp(s - mass) for s in logps]
    return -mass + sum(w * math.log(w / qk) for w, qk in zip(weights, q, strict=True) if w > 0)


def _sequence_logp(model, prompt_ids, completion_ids):
    ids = torch.tensor([prompt_ids + completion_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    positions = range(len(prompt_ids) - 1, ids.size(1) - 1)
    return sum(logp[p, ids[0, p + 1]].item() for p in positions)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_mixed_dataset_loss_is_token_weighted_by_hand(tokenizer, tmp_path, arch):
    """Groups and TRL rows in one batch: (sum of group losses + TRL token NLL) / (mean lengths + tokens)."""
    rows = MULTIREF + DATASETS["conversational_prompt_completion"][:2]
    spectrum = _spectrum(tokenizer, tmp_path, rows, arch)
    data = spectrum.train_dataset
    assert len(data) == 4
    model = spectrum.model.eval()
    numerator = denominator = 0.0
    for row in data:
        if row["completion_ids"]:
            logps = [_sequence_logp(model, row["prompt_ids"], c) for c in row["completion_ids"]]
            numerator += _group_loss(logps, row["weights"])
            denominator += sum(map(len, row["completion_ids"])) / len(row["completion_ids"])
        else:
            first = next(i for i, label in enumerate(row["labels"]) if label != -100)
            numerator -= _sequence_logp(model, row["input_ids"][:first], row["input_ids"][first:])
            denominator += len(row["input_ids"]) - first
    batch = spectrum.data_collator([data[i] for i in range(4)])
    assert "sft" in batch
    with torch.no_grad():
        loss = spectrum.compute_loss(model, batch).item()
    assert loss == pytest.approx(numerator / denominator, rel=1e-5)


def test_references_as_assistant_messages_equal_strings(tokenizer, tmp_path):
    as_messages = [{**row, "references": [_assistant(r) for r in row["references"]]} for row in MULTIREF]
    strings = _batch_loss(_spectrum(tokenizer, tmp_path / "s", MULTIREF))
    assert _batch_loss(_spectrum(tokenizer, tmp_path / "m", as_messages)) == pytest.approx(strings, abs=1e-6)


@pytest.mark.parametrize("chunk", [64, 2])
def test_moe_aux_loss_is_added_to_the_spectrum_loss(tokenizer, tmp_path, chunk):
    """coef * router loss on top of the spectrum loss, one chunk or two-pass chunks alike."""
    plain = _batch_loss(_spectrum(tokenizer, tmp_path / "a", MULTIREF, "qwen3_moe", router_aux_loss_coef=0.0))
    trainer = _spectrum(
        tokenizer, tmp_path / "b", MULTIREF, "qwen3_moe", router_aux_loss_coef=0.5, spectrum_chunk_size=chunk
    )
    with_aux = _batch_loss(trainer)
    (aux,) = trainer._metrics["train"]["aux_loss"]
    assert aux > 0
    assert with_aux == pytest.approx(plain + 0.5 * aux, rel=1e-5)
    trainer.train()  # backward through the router loss (two-pass: recomputed chunks)
    assert math.isfinite(trainer.state.log_history[0]["loss"])


def test_a_stream_of_multireference_rows_trains(tokenizer, tmp_path):
    def stream():
        yield from MULTIREF

    trainer = SpectrumTrainer(
        _model("llama", tokenizer),
        processing_class=copy.deepcopy(tokenizer),
        args=_args(SpectrumConfig, tmp_path, max_steps=2, per_device_train_batch_size=2),
        train_dataset=IterableDataset.from_generator(stream),
    )
    trainer.train()
    assert [e["loss"] > 0 for e in trainer.state.log_history if "loss" in e] == [True, True]


@pytest.mark.parametrize("method", ["lora", "ia3", "loha", "prompt_tuning", "prefix_tuning", "p_tuning"])
def test_peft_methods_train_on_both_kinds(tokenizer, tmp_path, method):
    from peft import (
        IA3Config,
        LoHaConfig,
        LoraConfig,
        PrefixTuningConfig,
        PromptEncoderConfig,
        PromptTuningConfig,
    )

    peft_config = {
        "lora": LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
        "ia3": IA3Config(
            target_modules=["v_proj", "down_proj"], feedforward_modules=["down_proj"], task_type="CAUSAL_LM"
        ),
        "loha": LoHaConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"),
        "prompt_tuning": PromptTuningConfig(num_virtual_tokens=2, task_type="CAUSAL_LM"),
        "prefix_tuning": PrefixTuningConfig(num_virtual_tokens=2, task_type="CAUSAL_LM"),
        "p_tuning": PromptEncoderConfig(num_virtual_tokens=2, encoder_hidden_size=8, task_type="CAUSAL_LM"),
    }[method]
    rows = MULTIREF + DATASETS["conversational_prompt_completion"][:2]
    losses = []
    for sharing in (False, True):  # prefix sharing must stay exact (it is off under prompt learning)
        trainer = SpectrumTrainer(
            _model("llama", tokenizer),
            processing_class=copy.deepcopy(tokenizer),
            args=_args(SpectrumConfig, tmp_path, spectrum_prefix_sharing=sharing),
            train_dataset=_dataset(MULTIREF),
            peft_config=copy.deepcopy(peft_config),
        )
        losses.append(_batch_loss(trainer))
    assert losses[1] == pytest.approx(losses[0], abs=1e-6)
    trainer = SpectrumTrainer(
        _model("llama", tokenizer),
        processing_class=copy.deepcopy(tokenizer),
        args=_args(SpectrumConfig, tmp_path),
        train_dataset=_dataset(rows),
        peft_config=copy.deepcopy(peft_config),
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    after = dict(trainer.model.named_parameters())
    assert any(not torch.equal(before[n], after[n]) for n in before)
    assert math.isfinite(trainer.state.log_history[0]["loss"])


@pytest.mark.parametrize(
    "rows, overrides, message",
    [
        (MULTIREF, {"packing": True, "max_length": 32}, "would split the group's references"),
        (MULTIREF, {"padding_free": True, "max_length": None}, "would split the group's references"),
        ([{**MULTIREF[0], "weight": [1, 1, 1]}], {}, "unknown field 'weight' in a multi-reference row; did"),
        ([{"prompt": "Pick.", "completion": "1", "weights": [1]}], {}, "'weights' belongs to a multi-ref"),
        ([{"prompt": "Pick.", "completions": "1"}], {}, "did you mean 'completion'"),
        ([{"prompt": "Name.", "references": ["Emma", "emma", "Ava"]}], {}, "normalize_answer"),
    ],
)
def test_refusals_name_the_reason(tokenizer, tmp_path, rows, overrides, message):
    with pytest.raises((DataError, ValueError), match=message):
        _spectrum(tokenizer, tmp_path, rows, **overrides)
