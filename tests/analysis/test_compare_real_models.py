"""scripts/compare_real_models.py on two hand-made real-model runs: the cross-model cells per arm."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "compare_real_models.py"


def _eval(directory, prompt, extracted):
    item = {
        "prompt": prompt,
        "references": ["red", "blue", "green"],
        "weights": [1 / 3] * 3,
        "sample": {"metrics": {}, "counts": {"x": 1}, "counts_extracted": extracted, "generations": []},
    }
    task = {
        "suite": "spread",
        "kind": "open",
        "status": "ok",
        "split": "heldout",
        "n_items": 1,
        "metrics": {"sample": {"coverage": 1.0}},
        "items": [item],
    }
    directory.mkdir(parents=True)
    (directory / "results.json").write_text(
        json.dumps(
            {"schema_version": 1, "model": "m", "adapter": None, "mode": "sample", "tasks": {"colors": task}}
        )
    )


def _run(root, prompt, spectrum_answer):
    counts = {"base": {"red": 3, "blue": 1}, "sft": {"red": 4}, "spectrum": {spectrum_answer: 4}}
    runs = {}
    for arm, extracted in counts.items():
        runs[arm] = {}
        for seed in ("0", "1"):
            _eval(root / arm / f"seed-{seed}" / "eval", prompt, extracted)
            runs[arm][seed] = str(root / arm / f"seed-{seed}")
    (root / "results.json").write_text(json.dumps({"runs": runs}))
    return root


def test_cross_model_cells_per_arm(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("compare_real_models", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    chat = _run(tmp_path / "chat", [{"role": "user", "content": "Name a colour."}], "blue")
    plain = _run(tmp_path / "plain", "Question: Name a colour.\nAnswer:\n", "green")
    assert module.main([str(chat), str(plain), "--out", str(tmp_path / "cmp")]) == 0
    printed = capsys.readouterr().out.splitlines()
    rows = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[1:]
        for line in printed
        if line.startswith("| ") and not line.startswith("| arm")
    }
    assert rows["sft"][:2] == ["1.000 [1.000, 1.000]", "1.000 [1.000, 1.000]"]  # both collapse onto "red"
    assert rows["spectrum"][:2] == ["0.000 [0.000, 0.000]", "0.000 [0.000, 0.000]"]  # disjoint answers
    assert rows["spectrum"][3].startswith("1.000")  # each model agrees with itself across seeds
    assert (tmp_path / "cmp" / "seed-1" / "compare.md").is_file()
