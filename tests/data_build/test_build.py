"""The data-build job end to end on random toy teachers: rows train reads, provenance, teacher
weights, the judge, agreement, resume after a kill, and bad input as one line."""

import json

import numpy as np
import pytest
from scipy.special import softmax

from spectrum_tune.cli import main
from spectrum_tune.data_build import DataBuildConfig, TeacherSpec, build_data
from spectrum_tune.data_build import teachers as teachers_module
from spectrum_tune.training.data import load_multiref

from .conftest import write_jsonl

PROMPTS = [
    {"prompt": "Name a color.", "references": ["red", "green", "blue", "yellow"]},
    {"prompt": "Pick a number between 1 and 10."},
    {"prompt": "Name a color and a number.", "completion": "red 7"},
]


def _config(tmp_path, teachers, **overrides):
    data = write_jsonl(tmp_path / "prompts.jsonl", PROMPTS)
    values = dict(
        data=str(data),
        out=tmp_path / "out",
        teachers=[TeacherSpec(t) for t in teachers],
        samples=12,
        max_new_tokens=3,
        progress=False,
        batch_size=8,
    )
    return DataBuildConfig(**{**values, **overrides})


def _rows(out):
    return [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]


def test_rows_load_unchanged_and_carry_provenance(tmp_path, teacher_dirs):
    config = _config(tmp_path, teacher_dirs[:1])
    summary = build_data(config)
    rows = _rows(config.out)
    assert summary["prompts"] == 3 and summary["rows"] == len(rows) == 3
    dataset = load_multiref(str(config.out / "rows.jsonl"))  # what `train` reads
    assert dataset["references"] == [r["references"] for r in rows]
    label = teacher_dirs[0]
    for row in rows:
        meta = row["metadata"]
        assert meta["teachers"] == [label] and meta["samples"] == 12
        teacher_total = sum(c.get(label, 0) for c in meta["counts"].values())
        teacher_total += sum(r["counts"].get(label, 0) for r in meta["rejected"])
        teacher_total += meta["unreadable"].get(label, 0)
        assert teacher_total == 12  # every sample is accounted for
        counts = [sum(meta["counts"][ref].values()) for ref in row["references"]]
        assert row["weights"] == pytest.approx(list(np.array(counts) / sum(counts)))
    assert rows[2]["metadata"]["counts"]["red 7"]["seed"] == 1  # the SFT answer seeds its row
    report = (config.out / "report.md").read_text()
    assert "Validity against the known valid sets" in report and "target entropy" in report


def test_rows_train_one_step(tmp_path, teacher_dirs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from spectrum_tune import SpectrumTrainer

    from ..toy import spectrum_config

    config = _config(tmp_path, teacher_dirs[:1], samples=4)
    build_data(config)
    trainer = SpectrumTrainer(
        model=AutoModelForCausalLM.from_pretrained(teacher_dirs[0]),
        args=spectrum_config(tmp_path / "run", max_steps=1, per_device_train_batch_size=2, max_length=64),
        train_dataset=load_multiref(str(config.out / "rows.jsonl")),
        processing_class=AutoTokenizer.from_pretrained(teacher_dirs[0]),
    )
    assert np.isfinite(trainer.train().training_loss)


def test_teacher_weights_are_the_teachers_exact_probabilities_renormalised(tmp_path, teacher_dirs):
    config = _config(tmp_path, teacher_dirs, weights="teacher", samples=6)
    build_data(config)
    teachers = [teachers_module.Teacher(TeacherSpec(t)) for t in teacher_dirs]
    for row, source in zip(_rows(config.out), PROMPTS, strict=True):
        # the build scored with batch_size 8: the same batches, the same float rounding
        mean = np.mean(
            [softmax(t.logprobs(source["prompt"], row["references"], 8)) for t in teachers], axis=0
        )
        assert row["weights"] == pytest.approx(list(mean / mean.sum()), rel=1e-6)
        assert row["metadata"]["weights"] == "teacher"


def test_judge_threshold_keeps_or_rejects_with_its_probability(tmp_path, teacher_dirs):
    judge = TeacherSpec(teacher_dirs[1], name="judge")
    config = _config(tmp_path, teacher_dirs[:1], judge=judge, judge_threshold=0.0, samples=4)
    build_data(config)
    row = _rows(config.out)[0]
    p_yes = row["metadata"]["judge"]["p_yes"]
    assert set(p_yes) == set(row["references"])
    direct = teachers_module.Teacher(judge, plain_format="{prompt}\nAnswer:")
    answer = row["references"][0]
    question = config.judge_prompt.replace("{prompt}", PROMPTS[0]["prompt"]).replace("{answer}", answer)
    assert p_yes[answer] == pytest.approx(direct.p_yes(question))
    config = _config(
        tmp_path, teacher_dirs[:1], judge=judge, judge_threshold=1.0, samples=4, out=tmp_path / "strict"
    )
    summary = build_data(config)
    assert summary["rows"] == 0 and summary["rejected_by_reason"].get("judge", 0) > 0
    rejected = [json.loads(line) for line in (config.out / "rejected.jsonl").read_text().splitlines()]
    assert any("no answer kept" in r["reasons"][0] for r in rejected)
    assert all(r["answer"] is None or r["reasons"][0].startswith("judge P(yes)=") for r in rejected)


def test_agreement_keeps_only_repeated_or_shared_answers(tmp_path, teacher_dirs):
    config = _config(tmp_path, teacher_dirs, agreement=True, min_count=2, samples=16, max_new_tokens=1)
    summary = build_data(config)
    assert summary["rejected_by_reason"].get("agreement", 0) > 0
    for row in _rows(config.out):
        for counts in row["metadata"]["counts"].values():
            teachers = [k for k, v in counts.items() if k != "seed" and v]
            assert "seed" in counts or sum(counts.values()) >= 2 or len(teachers) >= 2
        for rejected in row["metadata"]["rejected"]:
            assert rejected["reasons"][0].startswith("agreement")


def test_a_killed_build_resumes_from_its_cache(tmp_path, teacher_dirs, monkeypatch):
    config = _config(tmp_path, teacher_dirs[:1])
    calls = []
    original = teachers_module.Teacher.sample

    def dies_on_the_second_prompt(self, prompt, *args, **kwargs):
        calls.append(prompt)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the kill
        return original(self, prompt, *args, **kwargs)

    monkeypatch.setattr(teachers_module.Teacher, "sample", dies_on_the_second_prompt)
    with pytest.raises(KeyboardInterrupt):
        build_data(config)
    assert not (config.out / "rows.jsonl").exists()  # nothing half-written
    calls.clear()
    monkeypatch.setattr(
        teachers_module.Teacher,
        "sample",
        lambda self, prompt, *a, **k: (calls.append(prompt), original(self, prompt, *a, **k))[1],
    )
    build_data(config)
    assert calls == [PROMPTS[1]["prompt"], PROMPTS[2]["prompt"]]  # the first prompt came from the cache
    first = (config.out / "rows.jsonl").read_text()

    def no_model(self):
        raise AssertionError("a finished build reran a model")

    monkeypatch.setattr(teachers_module.Teacher, "_load", no_model)
    build_data(config)
    assert (config.out / "rows.jsonl").read_text() == first


def test_prompting_chat_plain_and_the_format_instruction():
    chat = teachers_module.Teacher(TeacherSpec("m", prompting="chat"), instruction="Just the name.")
    assert chat.render("Name a color.") == [{"role": "user", "content": "Name a color.\nJust the name."}]
    plain = teachers_module.Teacher(
        TeacherSpec("m", prompting="plain"), plain_format="Q: {prompt}\nA:", instruction="Just the name."
    )
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "A color?"}]
    assert plain.render(messages) == "Q: Be brief.\nA color?\n\nJust the name.\nA:"


def test_the_instruction_reaches_the_teacher_not_the_rows(tmp_path, teacher_dirs, monkeypatch):
    seen = []
    original = teachers_module.generate_samples

    def spy(model, tokenizer, prompt, *args, **kwargs):
        seen.append(prompt)
        return original(model, tokenizer, prompt, *args, **kwargs)

    monkeypatch.setattr(teachers_module, "generate_samples", spy)
    config = _config(tmp_path, teacher_dirs[:1], samples=2, format_instruction="Just the name.")
    build_data(config)
    assert all(p[-1]["content"].endswith(".\nJust the name.") for p in seen) and len(seen) == 3
    assert [r["prompt"] for r in _rows(config.out)] == [p["prompt"] for p in PROMPTS]


def test_fresh_run_samples_match_the_resumed_ones(tmp_path, teacher_dirs):
    """The per-prompt seed does not depend on what ran before (same rows with or without a cache)."""
    config = _config(tmp_path, teacher_dirs[:1], samples=6)
    build_data(config)
    other = _config(tmp_path, teacher_dirs[:1], samples=6, out=tmp_path / "again")
    build_data(other)
    assert (config.out / "rows.jsonl").read_text() == (other.out / "rows.jsonl").read_text()


def test_cli_builds_and_bad_input_is_one_line(tmp_path, teacher_dirs, capsys):
    data = write_jsonl(tmp_path / "p.jsonl", PROMPTS[:2])
    code = main(
        [
            "data-build",
            str(data),
            "--teacher",
            f"{teacher_dirs[0]},name=toy,prompting=plain",
            "--out",
            str(tmp_path / "out"),
            "--samples",
            "4",
            "--max-new-tokens",
            "2",
            "--no-progress",
            "--validator",
            "{int_range: {min: 1, max: 10}}",
            "--weights",
            "uniform",
        ]
    )
    out = capsys.readouterr().out
    assert "rows from 2 prompts" in out
    if code == 0:  # the first prompt's valid set is only measured; its answers pass no int_range
        assert all(r["metadata"]["teachers"] == ["toy"] for r in _rows(tmp_path / "out"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a"}\n{"prompt": ["x"]}\n')
    assert main(["data-build", str(bad), "--teacher", teacher_dirs[0], "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{bad}:2:" in err
    for argv, message in [
        (["--teacher", f"{teacher_dirs[0]},colour=red"], "option 'colour=red'"),
        (["--teacher", teacher_dirs[0], "--extract", "regex"], "--extract-regex"),
        (["--teacher", teacher_dirs[0], "--weights", "magic"], "--weights must be one of"),
        (["--teacher", teacher_dirs[0], "--extract", "first_valid"], "needs the row's valid set"),
    ]:
        assert main(["data-build", str(data), "--out", str(tmp_path / "c"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and message in err, err


def test_cli_options_reach_the_config(tmp_path, monkeypatch):
    from spectrum_tune.cli import data_build as command

    seen = {}

    def fake(config):
        seen["config"] = config
        return {"rows": 1, "prompts": 1, "references_mean": 1.0, "rejected_answers": 0, "wall_seconds": 0.0}

    monkeypatch.setattr(command, "build_data", fake)
    argv = [
        "p.jsonl",
        "--out",
        str(tmp_path),
        "--teacher",
        "a,prompting=plain",
        "--teacher",
        "b,name=B",
        "--stop",
        "",
        "--max-k",
        "3",
        "--judge",
        "j",
        "--agreement",
        "--select",
        "5",
        "--validator",
        "{regex: '[a-z]+'}",
    ]
    assert command.main(argv) == 0
    config = seen["config"]
    assert config.stop == [] and config.max_k == 3 and config.agreement and config.select == 5
    assert [t.label for t in config.teachers] == ["a", "B"] and config.teachers[0].prompting == "plain"
    assert config.judge.model == "j" and config.validator == {"regex": "[a-z]+"}
