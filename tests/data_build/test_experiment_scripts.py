"""The issue-26 experiment scripts: the tuned-split prompt export and the targets' arithmetic."""

import importlib.util
import json
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_task_prompts_exports_only_the_asked_split(tmp_path):
    out = tmp_path / "tuned.jsonl"
    _load("task_prompts").main(["--tasks", "eval/real/chat", "--split", "tuned", "--out", str(out)])
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    texts = [row["prompt"][-1]["content"] for row in rows]
    assert "Name a kind of tree." in texts
    assert not any("state" in text or "prime" in text for text in texts)  # held-out topics
    tree = rows[texts.index("Name a kind of tree.")]
    assert tree["references"][:2] == ["oak", "maple"]


def _arm(js, coverage, accuracy):
    return {"js": js, "coverage_extracted": coverage, "accuracy_extracted": accuracy}


def test_targets_judge_the_best_built_arm_against_sft_and_the_hand_written_arm():
    means = {
        "sft": _arm(0.30, 0.20, 0.25),
        "hand": _arm(0.10, 0.40, 0.30),
        "built-a": _arm(0.15, 0.31, 0.22),  # reduction (0.30-0.15)/(0.30-0.10) = 75 %
        "built-b": _arm(0.25, 0.50, 0.40),  # not the best: its JS is higher
    }
    builds = {
        "a": {"references_valid": 0.9, "rows": 10, "prompts": 10},
        "b": {"references_valid": 0.5, "rows": 9, "prompts": 10},
    }
    checks = {c["effect"]: c for c in _load("built_refs_experiment").judge_targets(means, builds)}
    assert checks["built references >= 90% valid (a)"]["status"] == "PASS"
    assert checks["built references >= 90% valid (b)"]["status"] == "MISS"
    reduction = checks["best built arm >= 70% of the hand-written arm's JS reduction over SFT"]
    assert reduction["status"] == "PASS" and "built-a: 75%" in reduction["detail"]
    assert checks["best built arm's coverage >= 1.5x SFT (extracted)"]["status"] == "PASS"  # 0.31 >= 0.30
    accuracy = "best built arm's closed accuracy not below SFT by more than 2 points (extracted)"
    assert checks[accuracy]["status"] == "MISS"  # 0.22 < 0.25 - 0.02
