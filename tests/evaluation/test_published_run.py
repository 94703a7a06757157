"""`eval --published --keep_generations all` on the tiny world model, recomputed by the independent script."""

import importlib.util
import json
from pathlib import Path

from spectrum_tune.cli import main

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "recompute_published.py"
TASKS = {
    "numbers": "name: numbers\nsplit: heldout\nextract: first_valid\nitems:\n"
    '  - {prompt: [{role: user, content: "Pick a number between 14 and 21."}], '
    'references: ["14", "15", "16", "17", "18", "19", "20", "21"], '
    "weights: [0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]}\n"
    '  - {prompt: [{role: user, content: "Pick a number between 3 and 8."}], '
    "validator: {int_range: {min: 3, max: 8}}}\n",
    "steer": "name: steer_coin\nsplit: heldout\nitems:\n"
    "  - {description: Flips of a coin that lands heads 75% of the time., "
    "examples: [heads, heads, tails, heads, heads], heldout: [heads, tails], k: [0, 4]}\n",
}
SAMPLE_NAMES = {
    "percent_valid",
    "unique_gens_pct",
    "usable_unique_pct",
    "unique_valid_count",
    "raw_unique_pct",
    "pairwise_uniqueness",
    "coverage_pct",
    "raw_unique_pct_normalized",
    "validity",
    "validity_extracted",
}
SCORE_NAMES = {"kl_divergence", "reverse_kl", "js_divergence", "cross_entropy", "mode_match", "js", "kl"}
STEER_NAMES = {"loss", "loss_geq_1", "loss_k", "first_acc", "acc", "all_acc", "ece", "incontext_nll@4"}


def _recompute(results_path):
    spec = importlib.util.spec_from_file_location("recompute_published", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(results_path), "--tol", "1e-9"])


def test_published_run_is_recomputed_by_the_reference_formulas(tiny_model_dir, tmp_path, capsys):
    for name, text in TASKS.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    out = tmp_path / "run"
    argv = [
        "eval",
        "--model",
        str(tiny_model_dir),
        "--tasks",
        str(tmp_path / "numbers.yaml"),
        str(tmp_path / "steer.yaml"),
        "--samples",
        "12",
        "--published",
        "--keep_generations",
        "all",
        "--verbalized",
        "2",
        "--no_progress",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["published"] is True and results["keep_generations"] == "all"
    numbers = results["tasks"]["numbers"]
    assert SAMPLE_NAMES <= set(numbers["metrics"]["sample"])
    assert numbers["metrics_n"]["sample"]["coverage_pct"] == 1  # only the listed item has a valid list
    assert SCORE_NAMES <= set(numbers["metrics"]["score"])
    assert {"vs_n_answers", "vs_valid_mass"} <= set(numbers["metrics"]["verbalized"])
    item = numbers["items"][0]
    assert len(item["sample"]["generations"]) == item["sample"]["n_generations"] == 12
    # extract: first_valid also records the extracted answers' counts (what homogeneity compares)
    assert sum(item["sample"]["counts_extracted"].values()) == 12
    assert len(item["score"]["published_logprobs"]) == 8
    assert STEER_NAMES <= set(results["tasks"]["steer_coin"]["metrics"]["steer"])
    positions = results["tasks"]["steer_coin"]["items"][0]["steer"]["positions"]
    assert [p["example_ind"] for p in positions] == [0, 1, 2, 3, 4]

    capsys.readouterr()
    assert _recompute(out / "results.json") == 0
    printed = capsys.readouterr().out
    assert "agree within 1e-09" in printed and "sample: 17 metric values" in printed
    assert "steer: 15 metric values" in printed
