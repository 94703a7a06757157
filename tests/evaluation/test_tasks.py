"""Task files: loading, validation errors naming file and field, validators, suites, generated data."""

import importlib.util
import json
from pathlib import Path

import pytest

from spectrum_tune.errors import SpectrumError
from spectrum_tune.evaluation.tasks import EVAL_DIR_ENV, eval_dir, load_task, parse_validator, resolve_tasks
from spectrum_tune.training.data import DataError

ROOT = Path(__file__).resolve().parents[2]
CHAT = '[{role: user, content: "Name a color."}]'


def _write(tmp_path: Path, text: str, name: str = "task.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = f"""name: colors
split: heldout
items:
  - prompt: {CHAT}
    references: [red, green, blue]
"""


def test_load_good_task_defaults(tmp_path):
    task = load_task(_write(tmp_path, GOOD))
    assert (task.name, task.split, task.kind, task.samples, task.max_new_tokens) == (
        "colors",
        "heldout",
        "open",
        100,
        16,
    )
    assert task.stop == ["\n"]
    assert task.suite == tmp_path.name
    item = task.items[0]
    assert item.weights == pytest.approx([1 / 3] * 3)
    assert item.prompt == [{"role": "user", "content": "Name a color."}]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (GOOD.replace("split: heldout\n", ""), "split"),
        (GOOD.replace("split: heldout", "split: test"), "split"),
        (GOOD.replace("name: colors", "name: colors\nsampels: 3"), "sampels"),
        (GOOD.replace("name: colors\n", ""), "name"),
        (GOOD.replace("references:", "refs:"), "refs"),
        (
            GOOD.replace(
                "    references: [red, green, blue]", "    references: [red, green]\n    weights: [1, 2, 3]"
            ),
            "weights",
        ),
        (GOOD.replace("    references: [red, green, blue]", "    references: [red, red]"), "references"),
        (GOOD.replace(f"  - prompt: {CHAT}\n    ", "  - "), "prompt"),
        (GOOD + "items_file: rows.jsonl\n", "items"),
        ("name: x\nsplit: tuned\nitems: []\n", "items"),
        (GOOD.replace("split: heldout", "split: heldout\nkind: closed"), "kind"),
        (GOOD.replace("split: heldout", "split: heldout\nsamples: 0"), "samples"),
        (GOOD.replace("split: heldout", "split: heldout\nstop: [1]"), "stop"),
        (GOOD.replace("references: [red, green, blue]", "validator: {between: 3}"), "validator"),
        (
            GOOD.replace("references: [red, green, blue]", "validator: {int_range: {min: 5, max: 1}}"),
            "validator.int_range",
        ),
        (GOOD.replace("references: [red, green, blue]", "validator: {regex: '[a-'}"), "validator.regex"),
        (
            GOOD.replace("references: [red, green, blue]", "validator: {one_of_file: nope.txt}"),
            "validator.one_of_file",
        ),
        ("name: s\nsplit: heldout\nitems:\n  - {examples: [a, b], heldout: [a], k: [0, 4]}\n", "k"),
        ("name: s\nsplit: heldout\nitems:\n  - {examples: [a, b]}\n", "heldout"),
        ("name: s\nsplit: heldout\nitems_file: missing.jsonl\n", "items_file"),
    ],
)
def test_bad_task_names_file_and_field(tmp_path, text, field):
    path = _write(tmp_path, text)
    with pytest.raises(DataError) as info:
        load_task(path)
    message = str(info.value)
    assert str(path) in message
    assert field in message
    assert "\n" not in message


def test_bad_row_in_items_file_names_its_line(tmp_path):
    (tmp_path / "rows.jsonl").write_text(
        '{"prompt": "Name a color.", "references": ["red"]}\n'
        '{"prompt": "x", "references": ["a"], "weights": [1, 2]}\n'
    )
    path = _write(tmp_path, "name: t\nsplit: tuned\nitems_file: rows.jsonl\n")
    with pytest.raises(DataError, match=r"rows\.jsonl:2: 'weights' has 2 entries"):
        load_task(path)


def test_malformed_yaml(tmp_path):
    with pytest.raises(DataError, match="malformed YAML"):
        load_task(_write(tmp_path, "name: [unclosed\n"))


@pytest.mark.parametrize(
    ("items", "kind"),
    [
        ('  - {prompt: "What is 1 plus 1?", references: ["2"]}\n', "closed"),
        ('  - {prompt: "Flip.", references: [heads, tails], weights: [0.7, 0.3]}\n', "distribution"),
        ('  - {prompt: "Flip.", references: [heads, tails], weights: [0.5, 0.5]}\n', "open"),
        ('  - {prompt: "Write a sentence."}\n', "freetext"),
        ('  - {prompt: "Pick.", validator: {int_range: {min: 1, max: 9}}}\n', "open"),
        ("  - {examples: [a, b, c, d], heldout: [a]}\n", "steer"),
    ],
)
def test_kind_is_inferred(tmp_path, items, kind):
    task = load_task(_write(tmp_path, f"name: t\nsplit: heldout\nitems:\n{items}"))
    assert task.kind == kind


def test_steer_default_k_is_capped_by_examples(tmp_path):
    task = load_task(
        _write(tmp_path, "name: t\nsplit: heldout\nitems:\n  - {examples: [a, b, c, d, e], heldout: [a]}\n")
    )
    assert task.items[0].k == [0, 1, 4]


def test_validators(tmp_path):
    where = str(tmp_path / "t.yaml")
    numbers = parse_validator({"int_range": {"min": 1, "max": 20}}, where, tmp_path)
    assert numbers.size == 20
    # strict (canonical integers only): the trailing "." of " 20." is not forgiven any more
    assert [numbers(s) for s in ("7", " 20 ", " 20.", "0", "21", "seven", "7 8")] == [
        True,
        True,
        False,
        False,
        False,
        False,
        False,
    ]
    lenient = parse_validator({"int_range": {"min": 1, "max": 20, "lenient": True}}, where, tmp_path)
    assert lenient(" 20.") and lenient("07") and not lenient("21")
    regex = parse_validator({"regex": "[a-z]+ing"}, where, tmp_path)
    assert regex("Running.") and not regex("ran")
    (tmp_path / "names.txt").write_text("Alice\n\nBob\n")
    names = parse_validator({"one_of_file": "names.txt"}, where, tmp_path)
    assert names.size == 2
    assert names("alice") and names('"Bob".') and not names("Carol")


def test_validity_mask_uses_references_and_validator(tmp_path):
    item = '{prompt: "Pick.", references: ["1", "2"], validator: {int_range: {min: 1, max: 5}}}'
    text = f"name: t\nsplit: heldout\nitems:\n  - {item}\n"
    item = load_task(_write(tmp_path, text)).items[0]
    assert item.validity_mask(["1", "2.", "5", "6", "x"]).tolist() == [True, True, True, False, False]


def test_suite_resolution(tmp_path, monkeypatch):
    suite = tmp_path / "mysuite"
    suite.mkdir()
    _write(suite, GOOD, "a.yaml")
    _write(suite, GOOD.replace("name: colors", "name: other").replace("heldout", "tuned"), "b.yaml")
    monkeypatch.setenv(EVAL_DIR_ENV, str(tmp_path))
    assert eval_dir() == tmp_path
    assert [t.name for t in resolve_tasks(["mysuite"])] == ["colors", "other"]
    assert [t.suite for t in resolve_tasks(["mysuite"])] == ["mysuite", "mysuite"]
    assert [t.name for t in resolve_tasks(["mysuite"], split="tuned")] == ["other"]
    assert [t.name for t in resolve_tasks([str(suite / "a.yaml")])] == ["colors"]
    with pytest.raises(SpectrumError, match=r"unknown task suite 'nope'.*mysuite"):
        resolve_tasks(["nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpectrumError, match=r"suite 'empty'.*no task files"):
        resolve_tasks(["empty"])
    with pytest.raises(SpectrumError, match="does not exist"):
        resolve_tasks([str(tmp_path / "missing.yaml")])
    with pytest.raises(SpectrumError, match="task name 'colors' is used by both"):
        resolve_tasks([str(suite / "a.yaml"), str(_write(tmp_path, GOOD, "dup.yaml"))])
    with pytest.raises(SpectrumError, match="no task with split 'heldout'"):
        resolve_tasks([str(suite / "b.yaml")], split="heldout")


def test_bundled_suites_load_and_carry_a_split(monkeypatch):
    monkeypatch.delenv(EVAL_DIR_ENV, raising=False)
    assert eval_dir() == ROOT / "eval"
    tasks = resolve_tasks(["spread", "distribution", "accuracy", "steer"])
    assert {t.split for t in tasks} == {"heldout", "tuned"}
    names = {t.name for t in tasks}
    assert {"numbers_heldout_seen_widths", "numbers_heldout_new_widths", "freetext_sentences"} <= names
    assert {t.kind for t in tasks} == {"open", "closed", "distribution", "steer", "freetext"}


def _tuning_prompts() -> set[str]:
    prompts = set()
    for path in (ROOT / "data" / "tiny").glob("train-*.jsonl"):
        for line in path.read_text().splitlines():
            row = json.loads(line)
            if "prompt" in row:
                prompts.add(row["prompt"][-1]["content"])
    return prompts


def test_split_labels_match_the_tuning_files():
    tuning = _tuning_prompts()
    for task in resolve_tasks(["spread", "distribution", "accuracy"]):
        prompts = {item.prompt[-1]["content"] for item in task.items}
        if task.split == "heldout":
            assert not prompts & tuning, task.name
        else:
            assert prompts <= tuning, task.name


def test_new_width_ranges_have_widths_unseen_in_tuning():
    def widths(name):
        task = load_task(ROOT / "eval" / "spread" / f"{name}.yaml")
        return {len(item.references) for item in task.items}

    assert not widths("numbers_heldout_new_widths") & widths("numbers_tuned")
    assert widths("numbers_heldout_seen_widths") <= widths("numbers_tuned")


def test_generated_suites_are_up_to_date(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("make_eval_tasks", ROOT / "scripts" / "make_eval_tasks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "EVAL", tmp_path)
    monkeypatch.setattr(module, "written", [])
    monkeypatch.setattr("builtins.print", lambda *a, **k: None)
    module.main()
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated
    for relative in generated:
        assert (ROOT / "eval" / relative).read_text() == (tmp_path / relative).read_text(), relative
