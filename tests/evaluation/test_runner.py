"""Sample mode mechanics, the runner (failures, adapters, errors) and full `spectrum-tune eval` runs."""

import json
import math
from pathlib import Path

import pytest
import torch

from spectrum_tune.cli import main
from spectrum_tune.evaluation.sample import NEUTRAL_SAMPLING, generate_samples, sample_metrics
from spectrum_tune.evaluation.tasks import Item

from ..toy import save_toy, toy_model, toy_tokenizer

CHAT = [{"role": "user", "content": "Name a color."}]


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    return save_toy(tmp_path_factory.mktemp("toy"))


# ---- sample mode ----------------------------------------------------------------------------


class ScriptedModel(torch.nn.Module):
    """Returns fixed continuations from ``generate`` and records the generation kwargs."""

    def __init__(self, rows, pad_id):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.rows, self.pad_id, self.calls = rows, pad_id, []

    def generate(self, input_ids, attention_mask, num_return_sequences, **kwargs):
        self.calls.append({"n": num_return_sequences, **kwargs})
        tails = [self.rows[i % len(self.rows)] for i in range(num_return_sequences)]
        width = max(map(len, tails))
        prompt = input_ids[0].tolist()
        return torch.tensor([prompt + tail + [self.pad_id] * (width - len(tail)) for tail in tails])


def test_generation_cuts_at_end_of_turn_and_stop_strings(tokenizer):
    def ids(text):
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    eos = tokenizer.eos_token_id
    rows = [[*ids("red"), eos, *ids("blue")], ids("red\nblue"), ids("green"), ids("blue.red")]
    model = ScriptedModel(rows, tokenizer.pad_token_id)
    # the copied-prompt path (a scripted model has no forward to encode the prompt with); the
    # encode-once path is held to the same draws in test_sample_prefill.py
    samples = generate_samples(
        model, tokenizer, CHAT, 4, stop=["\n", "."], batch_size=4, max_new_tokens=5, prefill_once=False
    )
    assert samples == ["red", "red", "green", "blue"]
    assert len(generate_samples(model, tokenizer, CHAT, 7, batch_size=3, prefill_once=False)) == 7
    assert [call["n"] for call in model.calls] == [4, 3, 3, 1]  # N samples, in batches
    call = model.calls[0]
    assert call["stop_strings"] == ["\n", "."] and call["max_new_tokens"] == 5
    assert call["eos_token_id"] == [eos]  # the model's stop list plus the end-of-turn
    for key, value in NEUTRAL_SAMPLING.items():  # pure sampling whatever the checkpoint's defaults
        assert call[key] == value
    assert call["temperature"] == 1.0 and call["top_p"] == 1.0 and call["top_k"] == 0


def test_sampling_is_seeded_and_honours_stop_strings(tokenizer):
    model = toy_model(tokenizer).eval()
    model.generation_config.top_k = 2  # a checkpoint default that must not apply
    kwargs = dict(max_new_tokens=8, stop=[" ", "e"], batch_size=4)
    first = generate_samples(model, tokenizer, CHAT, 6, seed=3, **kwargs)
    again = generate_samples(model, tokenizer, CHAT, 6, seed=3, **kwargs)
    other = generate_samples(model, tokenizer, CHAT, 6, seed=4, **kwargs)
    assert len(first) == 6 and first == again and first != other
    assert not any(" " in s or "e" in s for s in first + other)


def test_sample_metrics_per_item_kind():
    closed = sample_metrics(
        Item("x", prompt="q", references=["Paris"], weights=[1.0]), ["Paris", "paris.", "Rome", "Paris"]
    )
    assert closed["accuracy"] == 0.75 and closed["validity"] == 0.75 and "coverage" not in closed

    open_item = Item("x", prompt="q", references=["a", "b", "c"], weights=[0.5, 0.25, 0.25])
    metrics = sample_metrics(open_item, ["a", "a", "b", "zzz"], n_boot=50)
    assert metrics["validity"] == 0.75 and metrics["coverage"] == pytest.approx(2 / 3)
    assert metrics["yield"] == 2 and metrics["unique_pct"] == pytest.approx(2 / 3)
    assert metrics["collision"] == pytest.approx(1 / 3)
    assert metrics["js_ci_low"] <= metrics["js_ci_high"]
    assert {"kl", "tv", "reverse_kl", "entropy", "raw_unique_pct", "collision_se"} <= set(metrics)

    from spectrum_tune.evaluation.tasks import parse_validator

    ranged = Item(
        "x", prompt="q", validator=parse_validator({"int_range": {"min": 1, "max": 9}}, "w", Path("."))
    )
    metrics = sample_metrics(ranged, ["3", "3", "12", "4"])
    assert metrics["validity"] == 0.75 and metrics["yield"] == 2
    assert "coverage" not in metrics and "js" not in metrics
    assert metrics["entropy"] == pytest.approx(
        (-(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3)) / math.log(9)
    )

    free = sample_metrics(Item("x", prompt="q"), ["A dog runs.", "A dog runs.", "The cat sleeps."])
    assert {"distinct_1", "distinct_2", "self_bleu", "vendi", "distinct_k", "entropy"} <= set(free)
    assert "validity" not in free and free["distinct_k"] == 2


# ---- the runner on the toy model ------------------------------------------------------------


def _tasks(folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "colors": "name: colors\nsplit: heldout\nitems:\n"
        '  - {prompt: [{role: user, content: "Name a color."}], '
        "references: [red, green, blue], weights: [0.5, 0.3, 0.2]}\n"
        '  - {prompt: "Pick a number between 1 and 3.", references: ["1", "2", "3"]}\n',
        "closed": "name: closed\nsplit: tuned\nitems:\n"
        '  - {prompt: "What is 1 plus 1?", references: ["2"]}\n',
        "free": 'name: free\nsplit: heldout\nmax_new_tokens: 6\nitems:\n  - {prompt: "Write a sentence."}\n',
        "ranged": "name: ranged\nsplit: heldout\nitems:\n"
        '  - {prompt: "Pick a number.", validator: {int_range: {min: 1, max: 9}}}\n',
        "steer": "name: steer\nsplit: heldout\nitems:\n  - {description: Colors., examples: [red, blue], "
        "heldout: [red], k: [0, 2]}\n",
    }
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return [str(folder / f"{name}.yaml") for name in files]


def _eval(model_dir, tasks, out, *extra):
    argv = ["eval", "--model", str(model_dir), "--tasks", *tasks, "--out", str(out), "--no_progress", *extra]
    return main(argv)


def test_eval_runs_every_task_kind(toy_dir, tmp_path):
    assert _eval(toy_dir, _tasks(tmp_path / "tasks"), tmp_path / "out", "--samples", "4") == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    tasks = results["tasks"]
    assert all(task["status"] == "ok" for task in tasks.values())
    assert tasks["colors"]["kind"] == "distribution" and tasks["closed"]["kind"] == "closed"
    assert {"validity", "coverage", "js", "js_ci_low"} <= set(tasks["colors"]["metrics"]["sample"])
    assert {"valid_mass", "js", "kl", "tv", "entropy"} <= set(tasks["colors"]["metrics"]["score"])
    assert set(tasks["closed"]["metrics"]["score"]) == {"valid_mass", "answer_prob", "answer_logprob"}
    assert tasks["colors"]["metrics_n"]["sample"]["coverage"] == 2  # how many items each mean averaged
    assert "score" not in tasks["free"]["metrics"] and "vendi" in tasks["free"]["metrics"]["sample"]
    assert set(tasks["steer"]["metrics"]) == {"steer"}
    item = tasks["colors"]["items"][0]
    assert sum(item["sample"]["counts"].values()) == 4 and len(item["sample"]["generations"]) == 4
    assert len(item["score"]["logprobs"]) == 3
    assert results["summary"]["by_split"]["tuned"]["n_tasks"] == 1


def test_a_crashing_task_is_recorded_and_the_run_goes_on(toy_dir, tmp_path, monkeypatch, capsys):
    from spectrum_tune.evaluation import score

    real = score.score_task

    def flaky(model, tokenizer, task, **kwargs):
        if task.name == "closed":
            raise RuntimeError("boom")
        return real(model, tokenizer, task, **kwargs)

    monkeypatch.setattr(score, "score_task", flaky)
    tasks = _tasks(tmp_path / "tasks")[:2]
    assert _eval(toy_dir, tasks, tmp_path / "out", "--mode", "score") == 1
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["tasks"]["closed"]["status"] == "failed"
    assert "RuntimeError: boom" in results["tasks"]["closed"]["error"]
    assert results["tasks"]["colors"]["status"] == "ok"
    assert results["summary"]["overall"]["n_failed"] == 1
    assert "failed: closed" in capsys.readouterr().out
    assert "FAILED" in (tmp_path / "out" / "report.md").read_text()


def test_adapter_changes_scores(toy_dir, tmp_path, tokenizer):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    config = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(toy_model(tokenizer), config).save_pretrained(tmp_path / "adapter")
    tasks = _tasks(tmp_path / "tasks")[:1]
    assert _eval(toy_dir, tasks, tmp_path / "base", "--mode", "score") == 0
    assert (
        _eval(toy_dir, tasks, tmp_path / "tuned", "--mode", "score", "--adapter", str(tmp_path / "adapter"))
        == 0
    )
    base = json.loads((tmp_path / "base" / "results.json").read_text())
    tuned = json.loads((tmp_path / "tuned" / "results.json").read_text())
    assert tuned["adapter"] == str(tmp_path / "adapter")
    base_lp = base["tasks"]["colors"]["items"][0]["score"]["logprobs"]
    tuned_lp = tuned["tasks"]["colors"]["items"][0]["score"]["logprobs"]
    assert base_lp != pytest.approx(tuned_lp)


def test_unloadable_model_and_unknown_suite_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    tasks = _tasks(tmp_path / "tasks")[:1]
    assert _eval(tmp_path / "broken", tasks, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "broken" in err and "\n" not in err
    assert _eval(tmp_path / "broken", ["no_such_suite"], tmp_path / "out") == 2
    assert "unknown task suite 'no_such_suite'" in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.json").exists()


# ---- end to end on the tiny model -----------------------------------------------------------


TINY_TASKS = {
    "numbers": "name: numbers\nsplit: heldout\nitems:\n"
    '  - {prompt: [{role: user, content: "Pick a number between 14 and 21."}], '
    'references: ["14", "15", "16", "17", "18", "19", "20", "21"]}\n'
    '  - {prompt: [{role: user, content: "Pick a number between 3 and 8."}], '
    'references: ["3", "4", "5", "6", "7", "8"]}\n',
    "coin": "name: coin\nsplit: heldout\nitems:\n"
    '  - {prompt: [{role: user, content: "A coin lands heads 75% of the time. Flip it."}], '
    "references: [heads, tails], weights: [0.75, 0.25]}\n",
    "capitals": "name: capitals\nsplit: heldout\nitems:\n"
    '  - {prompt: [{role: user, content: "What is the capital of Cuba?"}], references: [Havana]}\n',
    "steer": "name: steer_coin\nsplit: heldout\nitems:\n"
    "  - {description: Flips of a coin that lands heads 75% of the time., "
    "examples: [heads, heads, tails, heads], heldout: [heads, tails], k: [0, 4]}\n",
}
SCHEMA_KEYS = {
    "schema_version",
    "model",
    "adapter",
    "mode",
    "seed",
    "created",
    "wall_seconds",
    "tasks",
    "summary",
}


@pytest.mark.slow
def test_tiny_model_eval_and_compare(tiny_model_dir, tmp_path):
    folder = tmp_path / "tasks"
    folder.mkdir()
    for name, text in TINY_TASKS.items():
        (folder / f"{name}.yaml").write_text(text)
    tasks = [str(folder / f"{name}.yaml") for name in TINY_TASKS]
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    assert _eval(tiny_model_dir, tasks, run_a, "--samples", "20", "--seed", "1") == 0
    assert _eval(tiny_model_dir, tasks, run_b, "--samples", "20", "--published_eot", "--batch_size", "7") == 0

    results = json.loads((run_a / "results.json").read_text())
    assert SCHEMA_KEYS <= set(results) and results["schema_version"] == 1
    assert set(results["wall_seconds"]) >= {"score", "sample"}
    numbers = results["tasks"]["numbers"]["metrics"]
    assert {"validity", "coverage", "yield", "unique_pct", "collision", "js", "kl", "tv", "entropy"} <= set(
        numbers["sample"]
    )
    assert {"valid_mass", "js", "kl", "tv", "entropy"} <= set(numbers["score"])
    assert 0 < numbers["score"]["valid_mass"] <= 1
    assert "accuracy" in results["tasks"]["capitals"]["metrics"]["sample"]
    assert "answer_prob" in results["tasks"]["capitals"]["metrics"]["score"]
    assert "incontext_nll@4" in results["tasks"]["steer_coin"]["metrics"]["steer"]
    assert {"by_suite", "by_split", "overall"} <= set(results["summary"])
    report = (run_a / "report.md").read_text()
    assert "spectrum-tune eval report" in report and "| numbers |" in report
    for png in ("hist_numbers.png", "hist_coin.png", "coverage.png", "js.png"):
        assert (run_a / "plots" / png).read_bytes()[:4] == b"\x89PNG"

    # the published convention (no end-of-turn) only ever adds probability
    other = json.loads((run_b / "results.json").read_text())
    mass_a = results["tasks"]["numbers"]["metrics"]["score"]["valid_mass"]
    assert other["tasks"]["numbers"]["metrics"]["score"]["valid_mass"] > mass_a

    assert (
        main(
            [
                "compare",
                str(run_a),
                str(run_b),
                "--labels",
                "eot",
                "published",
                "--out",
                str(tmp_path / "cmp"),
            ]
        )
        == 0
    )
    table = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    row = table["metrics"]["score.valid_mass"]["numbers"]
    assert row["deltas"]["published"] == pytest.approx(row["values"]["published"] - row["values"]["eot"])
    assert "## score.valid_mass" in (tmp_path / "cmp" / "compare.md").read_text()
    assert (tmp_path / "cmp" / "plots" / "compare_coverage.png").read_bytes()[:4] == b"\x89PNG"


def test_temperature_and_top_p_reach_generate_and_results(toy_dir, tmp_path, monkeypatch):
    """--temperature/--top_p (default 1.0) override every task; a task's own values apply otherwise."""
    from spectrum_tune.evaluation import sample

    seen = []
    real = sample.generate_samples

    def spy(*args, **kwargs):
        seen.append((kwargs["temperature"], kwargs["top_p"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(sample, "generate_samples", spy)
    folder = tmp_path / "tasks"
    folder.mkdir()
    (folder / "hot.yaml").write_text(
        "name: hot\nsplit: heldout\ntemperature: 0.7\nitems:\n"
        '  - {prompt: "Pick a number.", references: ["1", "2", "3"]}\n'
    )
    (folder / "plain.yaml").write_text(
        'name: plain\nsplit: heldout\nitems:\n  - {prompt: "Name a color.", references: [red, blue]}\n'
    )
    tasks = [str(folder / "hot.yaml"), str(folder / "plain.yaml")]
    assert _eval(toy_dir, tasks, tmp_path / "a", "--samples", "2", "--mode", "sample") == 0
    results = json.loads((tmp_path / "a" / "results.json").read_text())
    assert (results["temperature"], results["top_p"]) == (1.0, 1.0)
    assert results["tasks"]["hot"]["temperature"] == 0.7 and results["tasks"]["plain"]["temperature"] == 1.0
    assert seen == [(0.7, 1.0), (1.0, 1.0)]
    seen.clear()
    args = ("--samples", "2", "--mode", "sample", "--temperature", "0.5", "--top_p", "0.9")
    assert _eval(toy_dir, tasks, tmp_path / "b", *args) == 0
    assert seen == [(0.5, 0.9), (0.5, 0.9)]
    report = (tmp_path / "b" / "report.md").read_text()
    assert "- sampling: temperature 0.5, top_p 0.9" in report
    bad = folder / "bad.yaml"
    bad.write_text("name: bad\nsplit: heldout\ntop_p: 1.5\nitems:\n  - {prompt: x, references: [a]}\n")
    from spectrum_tune.evaluation.tasks import load_task
    from spectrum_tune.training.data import DataError

    with pytest.raises(DataError, match="top_p"):
        load_task(bad)
