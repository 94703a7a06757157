"""Aggregate the demo's runs: headline table per arm (mean and range over seeds), the expected
effects checked as PASS/MISS, per-task tables, plots, results.json and report.md."""

from __future__ import annotations

import math
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.metrics import normalize_answer
from ..evaluation.render import bar_chart, fmt, markdown_table, new_figure, save_figure
from ..evaluation.report import load_results
from ..io import write_json_atomic, write_text_atomic

__all__ = ["check_effects", "headline_metrics", "write_demo_report"]

OPEN_KINDS = ("open", "distribution")
HEADLINE = [
    ("validity", "validity (sample)"),
    ("accuracy", "accuracy (closed)"),
    ("coverage", "coverage"),
    ("yield", "yield"),
    ("js_sample", "JS (sample)"),
    ("js", "JS (score)"),
    ("valid_mass", "valid mass"),
    ("incontext_nll", "in-context NLL"),
]
COVERAGE_FACTOR = 4  # coverage is judged where samples >= 4x the valid-set size


def _finite(values: list[float | None]) -> list[float]:
    """The values that are defined (an undefined metric is None or nan)."""
    return [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def _mean(values: list[float]) -> float:
    values = _finite(values)
    return float(np.mean(values)) if values else float("nan")


def _tasks(results: dict[str, Any], kinds: tuple[str, ...]) -> list[dict]:
    tasks = results["tasks"].values()
    return [task for task in tasks if task.get("status") == "ok" and task["kind"] in kinds]


def _metric(tasks: list[dict], namespace: str, key: str) -> float:
    return _mean([task["metrics"].get(namespace, {}).get(key) for task in tasks])


def _coverage_where_judged(results: dict[str, Any]) -> float:
    """Lowest item coverage among open items whose samples are >= 4x their valid-set size."""
    values = []
    samples = results.get("samples")
    for task in _tasks(results, ("open",)):
        for item in task["items"]:
            sample = item.get("sample")
            if not sample or not item.get("references"):
                continue
            drawn = samples or sum(sample["counts"].values())
            if drawn >= COVERAGE_FACTOR * len(item["references"]):
                values.append(sample["metrics"]["coverage"])
    return min(values) if values else float("nan")


def headline_metrics(results: dict[str, Any]) -> dict[str, float]:
    """One run's held-out headline numbers (means over tasks; see the README for definitions)."""
    spread = _tasks(results, OPEN_KINDS)
    opened = _tasks(results, ("open",))
    steer = _tasks(results, ("steer",))
    steer_keys = sorted(
        {key for task in steer for key in task["metrics"].get("steer", {})},
        key=lambda key: int(key.split("@")[1]),
    )
    new_widths = [
        task
        for name, task in results["tasks"].items()
        if name.endswith("new_widths") and task.get("status") == "ok"
    ]
    return {
        "validity": _metric(spread, "sample", "validity"),
        "accuracy": _metric(_tasks(results, ("closed",)), "sample", "accuracy"),
        "coverage": _metric(opened, "sample", "coverage"),
        "yield": _metric(opened, "sample", "yield"),
        "js_sample": _metric(spread, "sample", "js"),
        "js": _metric(spread, "score", "js"),
        "valid_mass": _metric(spread, "score", "valid_mass"),
        "incontext_nll": _metric(steer, "steer", steer_keys[-1]) if steer_keys else float("nan"),
        "js_new_widths": _metric(new_widths, "score", "js"),
        "js_stated": _metric(_tasks(results, ("distribution",)), "score", "js"),
        "min_coverage_judged": _coverage_where_judged(results),
    }


def _effect(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"effect": name, "status": "PASS" if passed else "MISS", "detail": detail}


def check_effects(arms: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The demo's seven expected effects, judged on seed means of held-out score-mode JS
    (exact, no sampling floor), sample-mode coverage and sample-mode closed-task accuracy.
    An effect whose arms were not run (e.g. no iid arm in the real-model demo) is "n/a"."""
    js = {name: arm["js"] for name, arm in arms.items()}
    base, sft, spec = (arms.get(name, {}) for name in ("base", "sft", "spectrum"))
    checks = [
        (
            ("base", "sft"),
            "1. collapse is real: SFT JS >= 5x base",
            lambda: (js["sft"] >= 5 * js["base"], f"SFT {js['sft']:.4f} vs 5x base {5 * js['base']:.4f}"),
        ),
        (
            ("sft", "spectrum"),
            "2a. cure: spectrum JS <= 0.1x SFT",
            lambda: (
                js["spectrum"] <= 0.1 * js["sft"],
                f"spectrum {js['spectrum']:.4f} vs 0.1x SFT {0.1 * js['sft']:.4f}",
            ),
        ),
        (
            ("spectrum",),
            "2b. coverage >= 0.9 where samples >= 4x valid set",
            lambda: (
                spec["min_coverage_judged"] >= 0.9,
                f"lowest item coverage {spec['min_coverage_judged']:.3f}",
            ),
        ),
        (
            ("base", "spectrum"),
            "3. fixes the biased base: spectrum JS <= 0.5x base",
            lambda: (
                js["spectrum"] <= 0.5 * js["base"],
                f"spectrum {js['spectrum']:.4f} vs 0.5x base {0.5 * js['base']:.4f}",
            ),
        ),
        (
            ("base", "spectrum"),
            "4. new range widths: spectrum JS <= base",
            lambda: (
                spec["js_new_widths"] <= base["js_new_widths"],
                f"spectrum {spec['js_new_widths']:.4f} vs base {base['js_new_widths']:.4f}",
            ),
        ),
        (
            ("base", "sft", "spectrum"),
            "5. stated distributions: spectrum JS <= 0.5x SFT and <= base",
            lambda: (
                spec["js_stated"] <= 0.5 * sft["js_stated"] and spec["js_stated"] <= base["js_stated"],
                f"spectrum {spec['js_stated']:.4f}, SFT {sft['js_stated']:.4f}, base {base['js_stated']:.4f}",
            ),
        ),
        (
            ("spectrum", "iid"),
            "6. exact loss beats i.i.d. samples: spectrum JS <= iid JS",
            lambda: (js["spectrum"] <= js["iid"], f"spectrum {js['spectrum']:.4f} vs iid {js['iid']:.4f}"),
        ),
        # one-sided: spectrum being MORE accurate than SFT is no failure of "accuracy kept"
        (
            ("base", "sft", "spectrum"),
            "7. accuracy kept: spectrum at most 2 points below SFT, both above base",
            lambda: (
                spec["accuracy"] >= sft["accuracy"] - 0.02
                and min(spec["accuracy"], sft["accuracy"]) > base["accuracy"],
                f"spectrum {spec['accuracy']:.3f}, SFT {sft['accuracy']:.3f}, base {base['accuracy']:.3f}",
            ),
        ),
    ]
    effects = []
    for needed, name, judge in checks:
        missing = [arm for arm in needed if arm not in arms]
        if missing:  # judged only on arms that ran; the lambdas defer the lookups until here
            effects.append({"effect": name, "status": "n/a", "detail": f"no {', '.join(missing)} arm"})
        else:
            effects.append(_effect(name, *judge()))
    return effects


def _aggregate(per_seed: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, dict[str, float]]]:
    summary = {}
    for arm, runs in per_seed.items():
        summary[arm] = {}
        for key in runs[0]:
            values = [run[key] for run in runs]
            finite = _finite(values)
            summary[arm][key] = {
                "mean": _mean(values),
                "min": min(finite, default=math.nan),
                "max": max(finite, default=math.nan),
            }
    return summary


def _plot_task(name: str, runs: dict[str, dict[str, Any]], path: Path) -> Path | None:
    """Target vs each arm's sampled distribution on a task's first listed item (seed 0)."""
    first = next(iter(runs.values()))["tasks"][name]["items"][0]
    refs = first.get("references") or []
    if len(refs) < 2:
        return None
    series = [("target", np.asarray(first["weights"], dtype=float))]
    for arm, results in runs.items():
        counts = results["tasks"][name]["items"][0].get("sample", {}).get("counts", {})
        values = np.array([counts.get(normalize_answer(r), 0) for r in refs], dtype=float)
        series.append((arm, values / max(values.sum(), 1.0)))
    figure = new_figure(max(7.0, min(18.0, 0.45 * len(refs) * len(series) / 2 + 2)), 3.4)
    ax = figure.subplots()
    x = np.arange(len(refs))
    width = 0.8 / len(series)
    for i, (label, values) in enumerate(series):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, refs, rotation=90 if len(refs) > 10 else 0, fontsize=8)
    prompt = first["prompt"][-1]["content"] if isinstance(first["prompt"], list) else first["prompt"]
    ax.set_title(f"{name}: {prompt}", fontsize=10)
    ax.set_ylabel("share of in-support samples")
    ax.legend(fontsize=8, ncol=len(series))
    return save_figure(figure, path)


def _per_task_js(runs: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, list[float]]]:
    names = [
        name
        for name, task in next(iter(runs.values()))["tasks"].items()
        if task["kind"] in OPEN_KINDS and task.get("status") == "ok"
    ]
    return names, {
        arm: [results["tasks"][name]["metrics"].get("score", {}).get("js") for name in names]
        for arm, results in runs.items()
    }


def write_demo_report(
    out: Path,
    runs: dict[str, dict[int, Path]],
    *,
    base_model: str,
    timings: dict[str, float],
    training: dict[str, Any],
    settings: dict[str, Any],
    check: Callable[[dict[str, dict[str, float]]], list[dict[str, Any]]] = check_effects,
) -> dict[str, Any]:
    """Write out/results.json, out/report.md and out/plots/*.png; return the results payload.

    ``check`` judges the expected effects from the arms' seed means (the tiny world's by default)."""
    loaded = {
        arm: {seed: load_results(path / "eval") for seed, path in seeds.items()}
        for arm, seeds in runs.items()
    }
    per_seed = {arm: [headline_metrics(r) for r in by_seed.values()] for arm, by_seed in loaded.items()}
    summary = _aggregate(per_seed)
    means = {arm: {key: value["mean"] for key, value in metrics.items()} for arm, metrics in summary.items()}
    effects = check(means)
    first_seed = {arm: next(iter(by_seed.values())) for arm, by_seed in loaded.items()}

    plots_dir = out / "plots"
    plots = []
    names, js_by_arm = _per_task_js(first_seed)
    for name in names:
        plot = _plot_task(name, first_seed, plots_dir / f"hist_{name}.png")
        if plot is not None:
            plots.append(plot)
    coverage_names = [n for n in names if first_seed["base"]["tasks"][n]["kind"] == "open"]
    plots.append(
        bar_chart(
            plots_dir / "js_per_task.png",
            "JS to target per held-out task (score mode)",
            names,
            [(arm, values, None) for arm, values in js_by_arm.items()],
        )
    )
    plots.append(
        bar_chart(
            plots_dir / "coverage_per_task.png",
            "Coverage per held-out open task (sample mode, seed 0)",
            coverage_names,
            [
                (
                    arm,
                    [r["tasks"][n]["metrics"].get("sample", {}).get("coverage") for n in coverage_names],
                    None,
                )
                for arm, r in first_seed.items()
            ],
        )
    )

    payload = {
        "schema_version": 1,
        "kind": "spectrum-tune demo",
        "base_model": base_model,
        "machine": f"{platform.machine()}, {platform.system()}",
        "settings": settings,
        "timings_seconds": timings,
        "arms": summary,
        "per_seed": per_seed,
        "effects": effects,
        "training": training,
        "runs": {arm: {str(seed): str(path) for seed, path in seeds.items()} for arm, seeds in runs.items()},
    }
    write_json_atomic(out / "results.json", payload)
    write_text_atomic(out / "report.md", _markdown(payload, names, js_by_arm, plots, out))
    return payload


def _markdown(
    payload: dict[str, Any], names: list[str], js_by_arm: dict[str, list[float]], plots: list[Path], out: Path
) -> str:
    settings, arms = payload["settings"], payload["arms"]
    seeds = settings["seeds"]

    def cell(stats: dict[str, float]) -> str:
        if seeds == 1:
            return fmt(stats["mean"])
        return f"{fmt(stats['mean'])} [{fmt(stats['min'])}, {fmt(stats['max'])}]"

    headline = markdown_table(
        ["arm", *[label for _, label in HEADLINE]],
        [[arm, *[cell(metrics[key]) for key, _ in HEADLINE]] for arm, metrics in arms.items()],
    )
    effects = markdown_table(
        ["effect", "status", "measured"],
        [[e["effect"], e["status"], e["detail"]] for e in payload["effects"]],
    )
    per_task = markdown_table(
        ["task", *js_by_arm],
        [[name, *[fmt(js_by_arm[arm][i]) for arm in js_by_arm]] for i, name in enumerate(names)],
    )
    images = "\n".join(f"![{p.stem}]({p.relative_to(out).as_posix()})" for p in plots)
    timings = ", ".join(f"{key} {value} s" for key, value in payload["timings_seconds"].items())
    interval = "mean [min, max] over seeds" if seeds > 1 else "one seed"
    gguf = settings.get("gguf_file")
    model_note = f" (`{gguf}`)" if gguf else " (the tiny offline model)"
    if settings.get("recipes"):  # runs written before the recipe list was recorded used the tiny set
        recipes = ", ".join(f"`recipes/{name}`" for name in settings["recipes"].values())
    else:
        recipes = f"`recipes/tiny-{{{', '.join(arm for arm in arms if arm != 'base')}}}.yaml`"
    return f"""# spectrum-tune demo: mode collapse and its cure

Base model: `{payload["base_model"]}`{model_note}. Arms tuned from the same base on the same
prompts with {recipes}
(steps: {settings["steps"] or "as in the recipes"}). Evaluated on **held-out** task files only
(`split: heldout` in `eval/`), sample mode ({settings["samples"] or "task default"} samples per prompt)
and score mode. Seeds: {seeds} ({interval}). Machine: {payload["machine"]}. Wall time: {timings}.

## Headline (held-out tasks)

{headline}

JS is the Jensen-Shannon divergence (nats) to the target on open and stated-distribution tasks; score
mode is exact (the model's distribution renormalised over the valid set, end-of-turn included),
sample mode uses the drawn samples. Valid mass is the probability the model puts on the valid set.
In-context NLL is the mean NLL of held-out outputs after the most in-context examples.

## Expected effects (judged on seed means; score-mode JS)

{effects}

## JS to target per held-out task (score mode, seed 0)

{per_task}

## Plots

{images}
"""
