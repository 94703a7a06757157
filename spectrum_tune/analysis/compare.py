"""``compare``: side-by-side tables and charts of eval runs, with the cross-model homogeneity section."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import SpectrumError
from ..evaluation.render import bar_chart, fmt, markdown_table
from ..evaluation.report import _columns, _steer_keys, load_results
from ..io import write_json_atomic, write_text_atomic
from .homogeneity import homogeneity_markdown, homogeneity_section

__all__ = ["compare_runs"]

COMPARE_CHARTS = ("coverage", "js", "validity", "accuracy")


def _compare_keys(runs: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    tasks = [task for run in runs for task in run["tasks"].values()]
    preferred = [("sample", k) for k in ("coverage", "js", "validity", "accuracy", "entropy", "collision")]
    preferred += [("score", k) for k in ("valid_mass", "answer_prob", "js", "entropy")]
    present = set(_columns(tasks))
    return [key for key in preferred if key in present] + [("steer", k) for k in _steer_keys(tasks)]


def compare_runs(
    run_dirs: Sequence[str | Path], out: str | Path, labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Side-by-side table (report.md, also as compare.md, + compare.json) with deltas vs the
    first run, plus charts (an undefined value is marked n/a, not drawn as 0)."""
    if len(run_dirs) < 2:
        raise SpectrumError("compare needs at least two run directories")
    labels = list(labels) if labels else [Path(d).name or str(d) for d in run_dirs]
    if len(labels) != len(run_dirs):
        raise SpectrumError(f"--labels has {len(labels)} names for {len(run_dirs)} runs")
    if len(set(labels)) != len(labels):
        labels = [f"{label}#{i + 1}" for i, label in enumerate(labels)]
    runs = [load_results(d) for d in run_dirs]
    task_names = list(dict.fromkeys(name for run in runs for name in run["tasks"]))

    def value(run: dict[str, Any], task: str, ns: str, key: str) -> float | None:
        result = run["tasks"].get(task)
        return None if result is None else result.get("metrics", {}).get(ns, {}).get(key)

    table: dict[str, Any] = {}
    for ns, key in _compare_keys(runs):
        rows = {}
        for task in task_names:
            values = {label: value(run, task, ns, key) for label, run in zip(labels, runs, strict=True)}
            if all(v is None for v in values.values()):
                continue
            base = values[labels[0]]
            deltas = {
                label: None if v is None or base is None else v - base
                for label, v in values.items()
                if label != labels[0]
            }
            rows[task] = {"values": values, "deltas": deltas}
        if rows:
            table[f"{ns}.{key}"] = rows
    payload = {
        "runs": [
            {
                "label": label,
                "dir": str(d),
                "model": run.get("model"),
                "adapter": run.get("adapter"),
                "mode": run.get("mode"),
                # where the samples came from: {"kind": "local"} or a served endpoint's host/version
                "backend": run.get("backend") or {"kind": "local"},
            }
            for label, d, run in zip(labels, run_dirs, runs, strict=True)
        ],
        "baseline": labels[0],
        "metrics": table,
    }
    out = Path(out)
    payload["homogeneity"] = homogeneity_section(runs, labels, out / "plots")
    write_json_atomic(out / "compare.json", payload)
    markdown = _compare_markdown(payload, labels)
    # report.md, like eval's; compare.md is the same text under its old name, for existing scripts
    write_text_atomic(out / "report.md", markdown)
    write_text_atomic(out / "compare.md", markdown)
    for metric in COMPARE_CHARTS:
        key = f"sample.{metric}" if f"sample.{metric}" in table else f"score.{metric}"
        if key not in table:
            continue
        rows = table[key]
        series = [(label, [rows[t]["values"][label] for t in rows], None) for label in labels]
        bar_chart(out / "plots" / f"compare_{metric}.png", f"{key} per task", list(rows), series)
    return payload


def _served_note(backend: dict[str, Any]) -> str:
    """ ", served by HOST (vLLM X)" for a served run; nothing for a local one."""
    if backend.get("kind") != "served":
        return ""
    version = f" ({backend['server_version']})" if backend.get("server_version") else ""
    return f", served by {backend.get('host')}{version}"


def _compare_markdown(payload: dict[str, Any], labels: Sequence[str]) -> str:
    lines = ["# spectrum-tune compare", "", f"Deltas are against `{labels[0]}`.", ""]
    lines += [
        f"- `{run['label']}`: model `{run['model']}`, adapter `{run['adapter']}`, mode {run['mode']}"
        + _served_note(run["backend"])
        for run in payload["runs"]
    ]
    for key, rows in payload["metrics"].items():
        header = ["task", labels[0], *labels[1:]]
        body = []
        for task, row in rows.items():
            cells = [fmt(row["values"][labels[0]])]
            for label in labels[1:]:
                delta = row["deltas"][label]
                sign = "" if delta is None else f" ({'+' if delta >= 0 else ''}{fmt(delta)})"
                cells.append(fmt(row["values"][label]) + sign)
            body.append([task, *cells])
        lines += ["", f"## {key}", "", markdown_table(header, body)]
    if "homogeneity" in payload:
        lines += ["", homogeneity_markdown(payload["homogeneity"]).rstrip("\n")]
    return "\n".join(lines) + "\n"
