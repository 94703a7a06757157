"""report.md, plots and compare on hand-made results (no model needed)."""

import copy
import json

import pytest

from spectrum_tune.analysis.compare import compare_runs
from spectrum_tune.errors import SpectrumError
from spectrum_tune.evaluation.report import load_results, render_markdown, write_report
from spectrum_tune.evaluation.runner import _json_safe, summarize

PROMPT = [{"role": "user", "content": "Flip a coin."}]


def _task(suite, kind, sample=None, score=None, steer=None, items=None, status="ok"):
    metrics = {ns: m for ns, m in (("sample", sample), ("score", score), ("steer", steer)) if m is not None}
    task = {"suite": suite, "split": "heldout", "kind": kind, "description": "", "path": "x.yaml"}
    task.update({"n_items": len(items or [1]), "status": status, "metrics": metrics, "items": items or []})
    if status != "ok":
        task.update(error="RuntimeError: boom", metrics={}, items=[])
    return task


def _results(coverage=0.5, js=0.2):
    coin_item = {
        "prompt": PROMPT,
        "references": ["heads", "tails"],
        "weights": [0.7, 0.3],
        "sample": {
            "metrics": {"validity": 0.9},
            "counts": {"heads": 6, "tails": 3, "edge": 1},
            "generations": [],
        },
        "score": {"metrics": {}, "logprobs": [-0.5, -1.0], "q": [0.62, 0.38]},
    }
    tasks = {
        "coins": _task(
            "distribution",
            "distribution",
            sample={
                "validity": 0.9,
                "coverage": coverage,
                "js": js,
                "js_ci_low": js / 2,
                "js_ci_high": js * 2,
            },
            score={"valid_mass": 0.8, "js": 0.1},
            items=[coin_item] * 5,
        ),
        "capitals": _task(
            "accuracy", "closed", sample={"accuracy": 0.75, "validity": 1.0}, score={"answer_prob": 0.6}
        ),
        "steer": _task(
            "steer", "steer", steer={"incontext_nll@0": 3.0, "incontext_nll@16": 1.5, "incontext_nll@4": 2.0}
        ),
        "broken": _task("accuracy", "closed", status="failed"),
    }
    return {
        "schema_version": 1,
        "model": "tiny",
        "adapter": "runs/a",
        "mode": "both",
        "seed": 3,
        "samples": 10,
        "split": "heldout",
        "published_eot": False,
        "created": "2025-01-01T00:00:00+00:00",
        "wall_seconds": {"score": 0.1, "sample": 2.0, "steer": 0.0, "total": 2.2},
        "tasks": tasks,
        "summary": summarize(tasks),
    }


def test_markdown_has_header_and_one_table_per_suite():
    text = render_markdown(_results())
    assert "model: `tiny`" in text and "adapter: `runs/a`" in text and "mode: both, seed: 3" in text
    assert text.count("\n## ") == 3  # distribution, accuracy, steer
    assert "| coins | heldout | distribution | 5 | 0.900 | 0.500 | 0.200 [0.100, 0.400] |" in text
    header = next(line for line in text.splitlines() if line.startswith("| task") and "steer" in line)
    assert header.index("@0") < header.index("@4") < header.index("@16")  # k sorted numerically
    assert "FAILED" in text and "`broken`: RuntimeError: boom" in text


def test_summary_means_per_suite_and_split():
    summary = _results()["summary"]
    assert summary["by_suite"]["accuracy"] == {
        "n_tasks": 2,
        "n_failed": 1,
        "sample": {"accuracy": 0.75, "validity": 1.0},
        "score": {"answer_prob": 0.6},
    }
    assert "js_ci_low" not in summary["by_split"]["heldout"]["sample"]
    assert summary["overall"]["n_tasks"] == 4


def test_nan_is_written_as_null():
    assert _json_safe({"a": [float("nan"), 1.0, float("inf")]}) == {"a": [None, 1.0, None]}


def test_write_report_writes_pngs(tmp_path):
    paths = write_report(_results(), tmp_path)
    names = {p.name for p in paths}
    assert {"report.md", "hist_coins.png", "coverage.png", "js.png"} <= names
    for path in paths:
        if path.suffix == ".png":
            assert path.read_bytes()[:4] == b"\x89PNG"
    assert not list(tmp_path.rglob(".*"))  # no temporary files left behind


def _run(tmp_path, name, **kwargs):
    results = _results(**kwargs)
    folder = tmp_path / name
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_compare_two_runs(tmp_path):
    base = _run(tmp_path, "base", coverage=0.5, js=0.2)
    tuned = _run(tmp_path, "tuned", coverage=0.9, js=0.05)
    payload = compare_runs([base, tuned], tmp_path / "cmp")
    row = payload["metrics"]["sample.coverage"]["coins"]
    assert row["values"] == {"base": 0.5, "tuned": 0.9}
    assert row["deltas"]["tuned"] == pytest.approx(0.4)
    assert payload["metrics"]["steer.incontext_nll@16"]["steer"]["deltas"]["tuned"] == 0
    assert "broken" not in payload["metrics"]["sample.accuracy"]
    markdown = (tmp_path / "cmp" / "compare.md").read_text()
    assert "| coins | 0.500 | 0.900 (+0.400) |" in markdown
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text()) == payload
    for metric in ("coverage", "js", "validity", "accuracy"):
        assert (tmp_path / "cmp" / "plots" / f"compare_{metric}.png").read_bytes()[:4] == b"\x89PNG"


def test_compare_labels_and_errors(tmp_path):
    a, b = _run(tmp_path, "a"), _run(tmp_path, "b")
    payload = compare_runs([a, b, a], tmp_path / "cmp", labels=["x", "y", "z"])
    assert [run["label"] for run in payload["runs"]] == ["x", "y", "z"]
    with pytest.raises(SpectrumError, match="2 names for 3 runs"):
        compare_runs([a, b, a], tmp_path / "cmp", labels=["x", "y"])
    with pytest.raises(SpectrumError, match="at least two"):
        compare_runs([a], tmp_path / "cmp")
    with pytest.raises(SpectrumError, match=r"no results\.json"):
        load_results(tmp_path / "missing")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text(json.dumps({"schema_version": 99}))
    with pytest.raises(SpectrumError, match="schema_version"):
        load_results(bad)


def test_report_handles_missing_modes():
    results = copy.deepcopy(_results())
    for task in results["tasks"].values():
        task["metrics"].pop("sample", None)
        for item in task["items"]:
            item.pop("sample", None)
    text = render_markdown(results)
    assert "sample validity" not in text and "score js" in text


# --------------------------------------------------------------------------------------------
# Issue 17 item 5: reports a person can act on
# --------------------------------------------------------------------------------------------


def test_report_has_per_item_tables_and_sampling_settings():
    results = _results()
    results.update(temperature=0.7, top_p=0.9)
    markdown = render_markdown(results)
    assert "- sampling: temperature 0.7, top_p 0.9" in markdown
    section = markdown.split("### coins", 1)[1]
    header = section.split("\n")[2]
    assert header.startswith("| # | prompt | target (top) | model (top shares) | sample validity")
    first_row = section.split("\n")[4]
    # target heads 0.70 vs sampled heads 6/10 (shares over all samples, the invalid one included)
    assert first_row.startswith(
        "| 1 | Flip a coin. | heads 0.70, tails 0.30 | sampled: heads 0.60, tails 0.30, edge 0.10"
    )
    assert "score q: heads 0.62, tails 0.38 | 0.900 |" in first_row
    assert markdown.count("| Flip a coin. |") == 5


def _captured_axes(monkeypatch):
    from spectrum_tune.evaluation import render, report

    figures = []

    def keep(figure, path):
        figures.append(figure)
        return path

    monkeypatch.setattr(render, "save_figure", keep)
    monkeypatch.setattr(report, "save_figure", keep)
    return figures


def test_histogram_shares_are_over_all_samples_with_invalid_bar(tmp_path, monkeypatch):
    figures = _captured_axes(monkeypatch)
    results = _results()
    item = results["tasks"]["coins"]["items"][0]
    item["sample"]["counts"] = {"heads": 1, "nonsense": 99}  # one valid sample out of 100
    results["tasks"]["coins"]["items"] = [item]
    write_report(results, tmp_path)
    ax = figures[0].axes[0]
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    assert labels == ["heads", "tails", "invalid"]
    sampled = [bar.get_height() for bar in ax.containers[1]]
    assert sampled == pytest.approx([0.01, 0.0, 0.99])  # not a bar of 1.0 for the one valid sample


def test_undefined_values_are_marked_not_drawn_as_zero(tmp_path, monkeypatch):
    from spectrum_tune.evaluation.render import bar_chart

    figures = _captured_axes(monkeypatch)
    bar_chart(tmp_path / "x.png", "js", ["task"], [("base", [0.3], None), ("tuned", [None], None)])
    ax = figures[0].axes[0]
    assert [text.get_text().strip() for text in ax.texts] == ["n/a"]


def test_sample_interval_contains_its_point():
    from spectrum_tune.evaluation.metrics import sample_distribution_match

    # a near-perfect match: plug-in JS is biased upward, so bootstrap replicates sit above the point
    support = [str(k) for k in range(10)]
    samples = support * 10  # exactly the uniform target: no resample of it is, so all sit above 0
    result = sample_distribution_match(samples, support, [0.1] * 10, n_boot=200, seed=0)
    for name in ("js", "kl", "reverse_kl", "tv"):
        assert result[f"{name}_ci_low"] <= result[name] <= result[f"{name}_ci_high"], name
    assert result["js"] == pytest.approx(0.0, abs=1e-9) and result["js_ci_high"] > 0


def test_compare_writes_report_md(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for run, coverage in ((a, 0.5), (b, 0.8)):
        run.mkdir()
        (run / "results.json").write_text(
            json.dumps(_json_safe({**_results(coverage=coverage), "summary": {}}))
        )
    compare_runs([a, b], tmp_path / "cmp")
    report = (tmp_path / "cmp" / "report.md").read_text()
    assert report.startswith("# spectrum-tune compare") and "## sample.coverage" in report
    assert (tmp_path / "cmp" / "compare.md").read_text() == report  # the old name keeps working
