"""The real-model data (scripts/make_real_data.py): held-out and tuned tasks never leak into training.

Checks the committed files, not the script's constants, so a hand edit that breaks the split fails.
"""

import json
import re
from pathlib import Path

import pytest

from spectrum_tune.evaluation.tasks import resolve_tasks
from spectrum_tune.training.data import load_multiref

ROOT = Path(__file__).resolve().parents[2]
TRAIN_FILES = ["train-multiref", "train-sft", "train-multiref-plain", "train-sft-plain"]
RANGE = re.compile(r"(\d+) (?:and|to) (\d+)")


def _text(prompt) -> str:
    return prompt if isinstance(prompt, str) else " ".join(m["content"] for m in prompt)


def _training_rows() -> list[dict]:
    rows = []
    for name in TRAIN_FILES:
        rows += [json.loads(line) for line in (ROOT / "data/real" / f"{name}.jsonl").read_text().splitlines()]
    return rows


def _question(text: str) -> str:
    return text.removeprefix("Question: ").split("\nAnswer:")[0].strip()


def _eval_items(split: str):
    # one folder per run: chat and plain tasks share names (compare pairs a chat and a base model)
    tasks = [
        task
        for style in ("chat", "plain")
        for task in resolve_tasks([str(ROOT / "eval/real" / style)], split)
    ]
    return [(task, item) for task in tasks for item in task.items]


@pytest.mark.parametrize("split", ["tuned", "heldout"])
def test_eval_prompts_and_answer_sets_are_not_in_training(split):
    rows = _training_rows()
    train_questions = {_question(_text(row["prompt"])) for row in rows}
    train_sets = [frozenset(row["references"]) for row in rows if len(row["references"]) > 1]
    train_ranges = {tuple(map(int, m.groups())) for row in rows if (m := RANGE.search(_text(row["prompt"])))}
    items = _eval_items(split)
    assert len(items) >= 20  # chat + plain versions of every task
    for task, item in items:
        question = _question(_text(item.prompt))
        assert question not in train_questions, f"{task.name}: '{question}' is a training prompt"
        if len(item.references) > 1 and task.kind == "open":  # a category: its answer set is new
            refs = frozenset(item.references)
            assert all(len(refs & seen) <= len(refs) // 2 for seen in train_sets), task.name
        if (m := RANGE.search(question)) and task.name.endswith("numbers"):
            low, high = map(int, m.groups())
            assert all(high < a or low > b for a, b in train_ranges), f"{task.name}: {low}-{high} overlaps"


def test_tuned_and_heldout_categories_differ_and_every_file_loads():
    tuned = {frozenset(item.references) for task, item in _eval_items("tuned") if task.kind == "open"}
    heldout = {frozenset(item.references) for task, item in _eval_items("heldout") if task.kind == "open"}
    assert not tuned & heldout
    for name in [*TRAIN_FILES, "train-incontext"]:
        assert len(load_multiref(str(ROOT / "data/real" / f"{name}.jsonl"))) > 50


def test_plain_prompts_end_in_a_newline_and_chat_tasks_extract():
    for task, item in _eval_items("heldout"):
        if isinstance(item.prompt, str):
            assert item.prompt.endswith("\nAnswer:\n")  # the answer starts its own line (tokenisation)
        assert task.extract == "first_valid"
