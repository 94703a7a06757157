"""report.md tables, PNG plots, and ``compare`` across runs (all written atomically).

Plots use matplotlib's object-oriented ``Figure`` with the Agg canvas (no pyplot, no global
backend state) and are saved to memory first, then written with ``write_bytes_atomic``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SpectrumError
from ..io import write_text_atomic
from .metrics import normalize_answer
from .render import bar_chart, fmt, markdown_table, new_figure, save_figure

__all__ = ["load_results", "render_markdown", "write_plots", "write_report"]

SAMPLE_COLUMNS = (
    "validity", "accuracy", "coverage", "yield", "unique_pct", "collision", "js", "tv", "entropy",
    "distinct_1", "distinct_2", "self_bleu", "vendi", "distinct_k",
    "overtone_coverage", "overtone_union", "overtone_complete",
)  # fmt: skip
SCORE_COLUMNS = ("valid_mass", "answer_prob", "js", "tv", "entropy")
DIGITS = {"yield": 1, "distinct_k": 1, "self_bleu": 1, "vendi": 2}
HIST_KINDS = ("open", "distribution")
MAX_HIST_ITEMS = 4


# --------------------------------------------------------------------------------------------
# Formatting helpers
# --------------------------------------------------------------------------------------------


def _with_ci(metrics: dict[str, Any], key: str) -> str:
    low, high = metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high")
    text = fmt(metrics.get(key))
    return f"{text} [{fmt(low)}, {fmt(high)}]" if low is not None and high is not None else text


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, list):
        return prompt[-1]["content"] if prompt else ""
    return str(prompt or "")


def _steer_keys(tasks: Sequence[dict[str, Any]]) -> list[str]:
    keys = {  # incontext_nll@k only, not the published in-context metrics (--published)
        key
        for task in tasks
        for key in task.get("metrics", {}).get("steer", {})
        if key.startswith("incontext_nll@")
    }
    return sorted(keys, key=lambda key: int(key.rsplit("@", 1)[1]))


def _columns(tasks: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    """(namespace, metric) columns that at least one of ``tasks`` reports."""
    present = {
        (ns, key) for task in tasks for ns, values in task.get("metrics", {}).items() for key in values
    }
    columns = [("sample", key) for key in SAMPLE_COLUMNS if ("sample", key) in present]
    columns += [("score", key) for key in SCORE_COLUMNS if ("score", key) in present]
    return columns + [("steer", key) for key in _steer_keys(tasks)]


# --------------------------------------------------------------------------------------------
# report.md
# --------------------------------------------------------------------------------------------


def render_markdown(results: dict[str, Any]) -> str:
    """report.md: a header naming the run, then one table per suite (tasks as rows)."""
    wall = results.get("wall_seconds", {})
    lines = [
        "# spectrum-tune eval report",
        "",
        f"- model: `{results.get('model')}`",
        f"- adapter: `{results.get('adapter')}`",
        f"- mode: {results.get('mode')}, seed: {results.get('seed')}, samples per item: "
        f"{results.get('samples') or 'task default'}, split: {results.get('split')}, "
        f"end-of-turn scored: {'no (published convention)' if results.get('published_eot') else 'yes'}",
        f"- sampling: temperature {results.get('temperature', 1.0)}, top_p {results.get('top_p', 1.0)} "
        "(a task's own values, where it sets them, are in its section)",
        f"- created: {results.get('created')}; wall seconds: "
        + ", ".join(f"{key} {value:.1f}" for key, value in wall.items() if value),
        "",
        "Columns `sample …` come from sampling (95% percentile-bootstrap interval over the valid "
        "samples in brackets, widened to contain the plug-in point estimate where the estimator's "
        "upward bias puts the whole bootstrap distribution above it; a task's interval is the mean of "
        "its items' bounds), `score …` from exact log-probs of the listed outputs, `steer …` is the "
        "in-context NLL after k examples (nats). `–` marks a value that is undefined (e.g. no valid "
        "sample), not zero. Each suite's table is followed by one table per task with its items.",
    ]
    tasks = results.get("tasks", {})
    suites: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, task in tasks.items():
        suites.setdefault(task["suite"], []).append((name, task))
    for suite, members in suites.items():
        columns = _columns([task for _, task in members])
        header = ["task", "split", "kind", "items", *(f"{ns} {key}" for ns, key in columns)]
        rows = []
        for name, task in members:
            if task["status"] != "ok":
                rows.append([name, task["split"], task["kind"], "FAILED", *("" for _ in columns)])
                continue
            cells = []
            for ns, key in columns:
                values = task["metrics"].get(ns, {})
                cells.append(
                    _with_ci(values, key) if key == "js" else fmt(values.get(key), DIGITS.get(key, 3))
                )
            rows.append([name, task["split"], task["kind"], str(task["n_items"]), *cells])
        lines += ["", f"## {suite}", "", markdown_table(header, rows)]
        failed = [(name, task) for name, task in members if task["status"] != "ok"]
        if failed:
            lines += ["", "Failed tasks:", *(f"- `{name}`: {task['error']}" for name, task in failed)]
        for name, task in members:
            if task["status"] == "ok" and task.get("items") and task["kind"] != "steer":
                lines += ["", *_item_section(name, task, results)]
    return "\n".join(lines) + "\n"


# Per-item columns, by namespace, in this order where an item has them.
ITEM_COLUMNS = (
    ("sample", "validity"), ("sample", "accuracy"), ("sample", "coverage"), ("sample", "js"),
    ("sample", "entropy"), ("sample", "overtone_coverage"), ("sample", "overtone_union"),
    ("score", "valid_mass"), ("score", "answer_prob"), ("score", "js"),
)  # fmt: skip
TOP_ANSWERS = 3
MAX_PROMPT_CHARS = 60
MAX_ANSWER_CHARS = 24  # free-text samples can be sentences; the table shows their start


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (one line, no pipes)."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _top(pairs: list[tuple[str, float]]) -> str:
    """The most likely answers with their shares: ``"7 0.62, 3 0.20, 5 0.09"``."""
    pairs = sorted(pairs, key=lambda pair: -pair[1])[:TOP_ANSWERS]
    shown = [(_short(_cell(answer), MAX_ANSWER_CHARS) or "(empty)", value) for answer, value in pairs]
    return ", ".join(f"{answer} {value:.2f}" for answer, value in shown)


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _item_row(index: int, item: dict[str, Any], columns: list[tuple[str, str]]) -> list[str]:
    prompt = _cell(_prompt_text(item.get("prompt")))
    prompt = _short(prompt, MAX_PROMPT_CHARS)
    refs, weights = item.get("references") or [], item.get("weights") or []
    target = (
        _top(list(zip(refs, weights, strict=False)))
        if refs
        else ("(validator)" if "validator" in item else "(free text)")
    )
    model = []
    if "sample" in item:
        counts = item["sample"].get("counts") or {}
        total = sum(counts.values()) or 1
        model.append("sampled: " + _top([(k, v / total) for k, v in counts.items()]))
    if "score" in item and item["score"].get("q"):
        model.append("score q: " + _top(list(zip(refs, item["score"]["q"], strict=False))))
    metrics = [fmt(item.get(ns, {}).get("metrics", {}).get(key)) for ns, key in columns]
    return [str(index + 1), prompt, target, "; ".join(model) or "–", *metrics]


def _item_section(name: str, task: dict[str, Any], results: dict[str, Any]) -> list[str]:
    """``### task``: one row per item: prompt, target vs the model's top answers, its metrics."""
    items = task["items"]
    present = {
        (ns, key) for item in items for ns in ("sample", "score")
        for key in item.get(ns, {}).get("metrics", {})
    }  # fmt: skip
    columns = [column for column in ITEM_COLUMNS if column in present]
    header = ["#", "prompt", "target (top)", "model (top shares)", *(f"{ns} {key}" for ns, key in columns)]
    lines = [f"### {name}", ""]
    if "temperature" in task and (task["temperature"], task.get("top_p")) != (
        results.get("temperature", 1.0),
        results.get("top_p", 1.0),
    ):
        lines += [f"Sampled at temperature {task['temperature']}, top_p {task.get('top_p')}.", ""]
    rows = [_item_row(index, item, columns) for index, item in enumerate(items)]
    return [*lines, markdown_table(header, rows)]


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------


def _histogram_items(task: dict[str, Any]) -> list[dict[str, Any]]:
    items = [item for item in task["items"] if len(item.get("references", [])) >= 2]
    if len(items) <= MAX_HIST_ITEMS:
        return items
    step = (len(items) - 1) / (MAX_HIST_ITEMS - 1)  # spread the picks over the task
    return [items[round(i * step)] for i in range(MAX_HIST_ITEMS)]


def _plot_histograms(name: str, task: dict[str, Any], path: Path) -> Path | None:
    import numpy as np

    items = _histogram_items(task)
    if not items:
        return None
    cols = 1 if len(items) == 1 else 2
    rows = math.ceil(len(items) / cols)
    widest = max(len(item["references"]) for item in items)
    figure = new_figure(max(6.0, min(16.0, 0.28 * widest * cols + 2)), 3.2 * rows)
    axes = np.atleast_1d(figure.subplots(rows, cols, squeeze=False).ravel())
    for ax, item in zip(axes, items, strict=False):
        refs = list(item["references"])
        sampled = "sample" in item
        labels = [*refs, "invalid"] if sampled else refs
        x = np.arange(len(labels))
        series = [("target", np.append(item["weights"], np.nan) if sampled else np.asarray(item["weights"]))]
        if sampled:
            # share of *all* samples (so one valid sample out of 100 is a bar of 0.01, not 1.0);
            # what is not a reference is the "invalid" bar
            counts = item["sample"]["counts"]
            total = sum(counts.values())
            hits = np.array([counts.get(normalize_answer(r), 0) for r in refs], dtype=float)
            shares = hits / total if total else np.full(len(refs), np.nan)
            series.append(("sampled", np.append(shares, 1 - shares.sum() if total else np.nan)))
        if "score" in item:
            q = np.asarray(item["score"]["q"], dtype=float)
            series.append(("score q", np.append(q, np.nan) if sampled else q))
        width = 0.8 / len(series)
        for i, (label, values) in enumerate(series):
            ax.bar(x + (i - (len(series) - 1) / 2) * width, np.nan_to_num(values), width, label=label)
        ax.set_xticks(x, labels, rotation=90 if len(labels) > 8 else 0, fontsize=7 if len(labels) > 20 else 9)
        title = _prompt_text(item["prompt"])
        if "sample" in item:
            title += f"  (validity {fmt(item['sample']['metrics'].get('validity'), 2)})"
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("share of samples / probability")
    for ax in axes[len(items) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    figure.suptitle(f"{name}: target vs model", fontsize=11)
    return save_figure(figure, path)


def _ci_err(metrics: Sequence[dict[str, Any]], key: str) -> Any:
    """Asymmetric error bars from ``_ci_low``/``_ci_high``; None when no task has an interval."""
    import numpy as np

    err = np.zeros((2, len(metrics)))
    for i, m in enumerate(metrics):
        value, low, high = m.get(key), m.get(f"{key}_ci_low"), m.get(f"{key}_ci_high")
        if None not in (value, low, high):
            err[:, i] = [max(0.0, value - low), max(0.0, high - value)]
    return err if err.any() else None


def write_plots(results: dict[str, Any], plots_dir: Path) -> list[Path]:
    """Target-vs-model histograms per open/distribution task, coverage and JS per task."""
    written = []
    ok = {name: task for name, task in results.get("tasks", {}).items() if task["status"] == "ok"}
    for name, task in ok.items():
        if task["kind"] in HIST_KINDS:
            path = _plot_histograms(name, task, plots_dir / f"hist_{name}.png")
            if path is not None:
                written.append(path)
    with_coverage = [
        (n, t["metrics"]["sample"]) for n, t in ok.items() if "coverage" in t["metrics"].get("sample", {})
    ]
    if with_coverage:
        names, metrics = zip(*with_coverage, strict=True)
        series = [("coverage", [m["coverage"] for m in metrics], None)]
        written.append(bar_chart(plots_dir / "coverage.png", "coverage per task (sample)", names, series))
    with_js = [
        n for n, t in ok.items() if any("js" in t["metrics"].get(ns, {}) for ns in ("sample", "score"))
    ]
    if with_js:
        series = []
        for ns in ("sample", "score"):
            metrics = [ok[n]["metrics"].get(ns, {}) for n in with_js]
            if any("js" in m for m in metrics):
                series.append((ns, [m.get("js") for m in metrics], _ci_err(metrics, "js")))
        written.append(
            bar_chart(plots_dir / "js.png", "Jensen-Shannon divergence to target (nats)", with_js, series)
        )
    return written


def write_report(results: dict[str, Any], out: str | Path) -> list[Path]:
    """Write ``report.md`` and ``plots/*.png`` for one run; returns the paths written."""
    out = Path(out)
    paths = [write_text_atomic(out / "report.md", render_markdown(results))]
    return paths + write_plots(results, out / "plots")


# --------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------


def load_results(run_dir: str | Path) -> dict[str, Any]:
    """Read ``run_dir/results.json`` (or a results.json path) with one-line errors."""
    path = Path(run_dir)
    path = path / "results.json" if path.is_dir() else path
    if not path.is_file():
        raise SpectrumError(f"no results.json in '{run_dir}'")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SpectrumError(f"{path}: malformed JSON ({error.msg})") from None
    if not isinstance(results, dict) or results.get("schema_version") != 1:
        raise SpectrumError(f"{path}: not a spectrum-tune results file (schema_version 1)")
    return results
