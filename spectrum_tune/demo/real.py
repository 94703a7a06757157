"""The real-model run (issue 20): base / sft / spectrum / in-context arms on realistic data.

``spectrum-tune demo --model smollm2-real`` (SmolLM2-135M-Instruct, chat prompts) and
``--model gemma3-270m-real`` (Gemma-3-270m pretrained base, plain-text prompts) each:

1. tune the fixed arms (``sft``; ``incontext`` where the model has chat turn tokens) and the
   spectrum arm once per alpha/beta setting of :data:`SWEEP` (alpha = beta = 1 is the
   Forcing-Diffuse loss), all from the recipes in ``recipes/`` on ``data/real``;
2. score every spectrum setting on the ``split: tuned`` tasks of ``eval/real/<style>`` only and keep
   the one with the lowest tuned score-mode JS (ties go to alpha = beta = 1) -- the sweep;
3. with ``--seeds N``, train the fixed arms and the chosen spectrum setting again for seeds 1..N-1
   (the sweep itself runs on seed 0);
4. evaluate base, fixed arms and the chosen spectrum arm once per seed on the ``split: heldout``
   tasks, in sample (answer extraction on) and score mode, and write the demo report (means and
   ranges over seeds) plus the sweep table, the training-KL curves with their per-epoch means and
   the issue's expected effects, judged on seed means.

Held-out tasks are never used for choosing anything.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpectrumError
from ..training.train import SUMMARY_FILE

__all__ = [
    "REAL_SETS",
    "SWEEP",
    "RealSet",
    "check_real_effects",
    "epoch_means",
    "extracted_means",
    "extracted_table",
    "run_real",
]


@dataclass(frozen=True)
class RealSet:
    """One real model's run: its registry entry, prompt style, fixed arms and spectrum recipe."""

    registry: str  # key of models.OFFLINE_MODELS
    style: str  # eval/real/<style>: chat (instruct model) or plain (pretrained base)
    arms: dict[str, str]  # arm -> recipe, trained as is
    spectrum: str  # recipe of the spectrum arm, trained once per SWEEP setting


REAL_SETS = {
    "smollm2-real": RealSet(
        "smollm2",
        "chat",
        {"sft": "smollm2-real-sft.yaml", "incontext": "smollm2-real-incontext.yaml"},
        "smollm2-real-spectrum.yaml",
    ),
    # no in-context arm: the pretrained base has no chat template, hence no turn tokens to reuse
    "gemma3-270m-real": RealSet(
        "gemma3-270m", "plain", {"sft": "gemma3-270m-real-sft.yaml"}, "gemma3-270m-real-spectrum.yaml"
    ),
}
SWEEP = [(1.0, 1.0), (1.0, 2.0), (2.0, 1.0)]  # (alpha, beta): the Forcing-Diffuse loss first


def _sweep_name(alpha: float, beta: float) -> str:
    return f"spectrum-a{alpha:g}-b{beta:g}"


def _tuned_score(run_dir: Path) -> dict[str, float]:
    from ..evaluation.report import load_results
    from .report import headline_metrics

    metrics = headline_metrics(load_results(run_dir / "eval-tuned"))
    return {"js": metrics["js"], "valid_mass": metrics["valid_mass"], "js_stated": metrics["js_stated"]}


def choose_setting(scores: dict[str, dict[str, float]]) -> str:
    """The sweep arm with the lowest tuned score-mode JS; the first listed wins a tie."""
    return min(scores, key=lambda name: (round(scores[name]["js"], 6), list(scores).index(name)))


def kl_curves(runs: dict[str, Path]) -> dict[str, list[tuple[int, float]]]:
    """(step, training KL(w || q)) per run, from the log history in training_summary.json."""
    curves = {}
    for name, path in runs.items():
        history = json.loads((path / SUMMARY_FILE).read_text())["log_history"]
        points = [(entry["step"], entry["spectrum/kl"]) for entry in history if "spectrum/kl" in entry]
        if points:
            curves[name] = points
    return curves


def epoch_means(path: Path) -> list[float]:
    """Training KL(w || q) averaged over each epoch's logged batches (epoch e holds the logs with
    e - 1 < epoch <= e): one batch is noisy, an epoch's mean is what "the KL flattened" is read on."""
    history = json.loads((path / SUMMARY_FILE).read_text())["log_history"]
    by_epoch: dict[int, list[float]] = {}
    for entry in history:
        if "spectrum/kl" in entry:
            by_epoch.setdefault(math.ceil(entry["epoch"] - 1e-9), []).append(entry["spectrum/kl"])
    return [float(np.mean(by_epoch[epoch])) for epoch in sorted(by_epoch)]


def plot_kl(curves: dict[str, list[tuple[int, float]]], path: Path, title: str) -> Path:
    from ..evaluation.render import new_figure, save_figure

    figure = new_figure(6.5, 3.4)
    ax = figure.subplots()
    for name, points in curves.items():
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, marker="o", markersize=3, alpha=0.8, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training KL(w || q) (nats)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(figure, path)


def _extracted(results: dict[str, Any]) -> dict[str, float]:
    """Held-out sample metrics read with answer extraction (the fair reading of verbose answers)."""
    from .report import OPEN_KINDS, _metric, _tasks

    opened, spread = _tasks(results, ("open",)), _tasks(results, OPEN_KINDS)
    return {
        "coverage_extracted": _metric(opened, "sample", "coverage_extracted"),
        "validity_extracted": _metric(spread, "sample", "validity_extracted"),
        "accuracy_extracted": _metric(_tasks(results, ("closed",)), "sample", "validity_extracted"),
    }


def check_real_effects(arms: dict[str, dict[str, float]], sweep: dict[str, dict[str, float]]) -> list[dict]:
    """The issue's expected effects, on held-out means (coverage read with extraction)."""
    spec, sft, base = arms["spectrum"], arms["sft"], arms["base"]
    equal = sweep[_sweep_name(1.0, 1.0)]["js"]
    best_unequal = min(v["js"] for k, v in sweep.items() if k != _sweep_name(1.0, 1.0))
    checks = [
        (
            "coverage >= 2x SFT (extracted)",
            spec["coverage_extracted"] >= 2 * sft["coverage_extracted"],
            f"spectrum {spec['coverage_extracted']:.3f} vs SFT {sft['coverage_extracted']:.3f}",
        ),
        (
            "score JS <= 0.5x SFT and <= base",
            spec["js"] <= 0.5 * sft["js"] and spec["js"] <= base["js"],
            f"spectrum {spec['js']:.4f}, SFT {sft['js']:.4f}, base {base['js']:.4f}",
        ),
        (
            "closed accuracy within 2 points of SFT (extracted)",
            abs(spec["accuracy_extracted"] - sft["accuracy_extracted"]) <= 0.02,
            f"spectrum {spec['accuracy_extracted']:.3f}, SFT {sft['accuracy_extracted']:.3f}",
        ),
        (
            "alpha != beta at least matches alpha = beta = 1 (tuned JS)",
            best_unequal <= equal,
            f"best alpha != beta {best_unequal:.4f} vs alpha = beta = 1 {equal:.4f}",
        ),
    ]
    return [
        {"effect": name, "status": "PASS" if ok else "MISS", "detail": detail} for name, ok, detail in checks
    ]


def _section(payload: dict[str, Any], kl_plot: Path, out: Path) -> str:
    from ..evaluation.render import fmt, markdown_table

    sweep = payload["sweep"]
    rows = [
        [
            name,
            fmt(s["js"]),
            fmt(s["js_stated"]),
            fmt(s["valid_mass"]),
            "yes" if name == payload["chosen"] else "",
        ]
        for name, s in sweep.items()
    ]
    extracted = extracted_table(payload["extracted"])
    epochs = max(len(means) for means in payload["kl_epochs"].values())
    kl_rows = [
        [name, *(fmt(v) for v in means), fmt(means[-1] / means[-2]) if len(means) > 1 else "–"]
        for name, means in payload["kl_epochs"].items()
    ]
    kl_table = markdown_table(
        ["run", *(f"epoch {e}" for e in range(1, epochs + 1)), "last / previous"], kl_rows
    )
    return f"""
## alpha/beta sweep (tuned split only, score mode, seed 0)

{markdown_table(["setting", "JS (score)", "JS stated odds", "valid mass", "chosen"], rows)}

## Held-out sample metrics with answer extraction (mean over seeds)

{extracted}

## Training KL

Mean training KL(w || q) per epoch (over its logged batches):

{kl_table}

![training KL]({kl_plot.relative_to(out).as_posix()})
"""


def _done(path: Path, marker: str) -> bool:
    return (path / marker).is_file()


def extracted_means(runs: dict[str, dict[int, Path]]) -> dict[str, dict[str, float]]:
    """Per arm, the extracted held-out metrics averaged over its seeds' ``eval/results.json``."""
    from ..evaluation.report import load_results
    from .report import _mean

    means = {}
    for arm, paths in runs.items():
        per_seed = [_extracted(load_results(path / "eval")) for path in paths.values()]
        means[arm] = {key: _mean([values[key] for values in per_seed]) for key in per_seed[0]}
    return means


def extracted_table(extracted: dict[str, dict[str, float]]) -> str:
    """The markdown table of :func:`extracted_means`."""
    from ..evaluation.render import fmt, markdown_table

    keys = ("coverage_extracted", "validity_extracted", "accuracy_extracted")
    return markdown_table(
        ["arm", *(key.replace("_", " (") + ")" for key in keys)],
        [[arm, *(fmt(m[key]) for key in keys)] for arm, m in extracted.items()],
    )


def run_real(options: Any) -> dict[str, Any]:
    """Train, sweep on the tuned split, evaluate once per seed on held-out tasks, write the report."""
    from ..io import write_json_atomic, write_text_atomic
    from ..models import fetch_model
    from .jobs import evaluate_arm, run_jobs, train_arm, worker_pool
    from .report import write_demo_report

    real = REAL_SETS[options.model]
    recipes = [*real.arms.values(), real.spectrum]
    for recipe in recipes:
        if not (options.recipes_dir / recipe).is_file():
            raise SpectrumError(f"demo recipe '{options.recipes_dir / recipe}' does not exist")
    started = time.perf_counter()
    directory, gguf_file = fetch_model(real.registry)
    base = str(directory)
    tasks = [str(Path(__file__).resolve().parents[2] / "eval" / "real" / real.style)]
    out, steps, seeds = options.out, options.steps, list(range(options.seeds))
    spectrum_recipe = str(options.recipes_dir / real.spectrum)

    def spectrum_job(alpha: float, beta: float, seed: int) -> tuple:
        path = out / _sweep_name(alpha, beta) / f"seed-{seed}"
        return (
            train_arm,
            spectrum_recipe,
            str(path),
            seed,
            steps,
            ["--spectrum_alpha", str(alpha), "--spectrum_beta", str(beta)],
        )

    sweep_dirs = {_sweep_name(a, b): out / _sweep_name(a, b) / "seed-0" for a, b in SWEEP}
    arm_dirs = {arm: {seed: out / arm / f"seed-{seed}" for seed in seeds} for arm in real.arms}
    training: dict[str, Any] = {}

    def train(jobs: dict[str, tuple], label: str) -> None:
        """Run the training jobs (name -> job, output dir = job[2]); --reuse keeps finished ones."""
        todo = [name for name in jobs if not (options.reuse and _done(Path(jobs[name][2]), SUMMARY_FILE))]
        training.update(
            zip(todo, run_jobs(executor, [jobs[name] for name in todo], label, options.progress), strict=True)
        )
        for name in jobs:
            if name not in training:
                summary = json.loads((Path(jobs[name][2]) / SUMMARY_FILE).read_text())
                training[name] = {
                    key: summary[key]
                    for key in ("global_steps", "wall_seconds", "first_logged_loss", "last_logged_loss")
                }

    with worker_pool(options.workers) as executor:
        # the fixed arms of every seed and the sweep (seed 0) do not depend on the sweep's outcome
        jobs = {
            f"{arm}/seed-{seed}": (
                train_arm,
                str(options.recipes_dir / recipe),
                str(arm_dirs[arm][seed]),
                seed,
                steps,
            )
            for seed in seeds
            for arm, recipe in real.arms.items()
        }
        jobs.update({f"{_sweep_name(a, b)}/seed-0": spectrum_job(a, b, 0) for a, b in SWEEP})
        train(jobs, "training arms")
        trained = time.perf_counter()
        run_jobs(
            executor,
            [
                (
                    evaluate_arm,
                    base,
                    str(path),
                    str(path / "eval-tuned"),
                    tasks,
                    0,
                    None,
                    gguf_file,
                    "score",
                    "tuned",
                )
                for path in sweep_dirs.values()
                if not (options.reuse and _done(path / "eval-tuned", "results.json"))
            ],
            "sweep (tuned split)",
            options.progress,
        )
        sweep = {name: _tuned_score(path) for name, path in sweep_dirs.items()}
        chosen = choose_setting(sweep)
        alpha, beta = next(setting for setting in SWEEP if _sweep_name(*setting) == chosen)
        train(
            {f"{chosen}/seed-{seed}": spectrum_job(alpha, beta, seed) for seed in seeds[1:]},
            "training the chosen setting (more seeds)",
        )
        swept = time.perf_counter()
        runs = {
            "base": {seed: out / "base" / f"seed-{seed}" for seed in seeds},
            **arm_dirs,
            "spectrum": {seed: out / chosen / f"seed-{seed}" for seed in seeds},
        }
        run_jobs(
            executor,
            [
                (
                    evaluate_arm,
                    base,
                    None if arm == "base" else str(path),
                    str(path / "eval"),
                    tasks,
                    seed,
                    options.samples,
                    gguf_file,
                )
                for seed in seeds
                for arm, paths in runs.items()
                for path in [paths[seed]]
                if not (options.reuse and _done(path / "eval", "results.json"))
            ],
            "evaluating (held-out)",
            options.progress,
        )
    evaluated = time.perf_counter()

    timings = {
        "training": round(trained - started, 1),
        "sweep_and_more_seeds": round(swept - trained, 1),
        "heldout_eval": round(evaluated - swept, 1),
        "total": round(evaluated - started, 1),
    }
    settings = {
        "seeds": len(seeds),
        "quick": options.quick,
        "steps": steps,
        "samples": options.samples,
        "tasks": tasks,
        "workers": options.workers,
        "model": options.model,
        "recipes": {**real.arms, "spectrum": real.spectrum},
        "gguf_file": gguf_file,
        "sweep": [list(setting) for setting in SWEEP],
    }
    extracted = extracted_means(runs)

    def check(means: dict[str, dict[str, float]]) -> list[dict]:
        return check_real_effects({arm: {**means[arm], **extracted[arm]} for arm in means}, sweep)

    payload = write_demo_report(
        out, runs, base_model=base, timings=timings, training=training, settings=settings, check=check
    )
    kl_runs = {**sweep_dirs, **{f"{chosen} seed {seed}": out / chosen / f"seed-{seed}" for seed in seeds[1:]}}
    curves = kl_curves(kl_runs)
    kl_plot = plot_kl(
        curves,
        out / "plots" / "training_kl.png",
        f"{options.model}: spectrum arms' training KL per logged step",
    )
    payload.update(
        extracted=extracted,
        sweep=sweep,
        chosen=chosen,
        kl_curves=curves,
        kl_epochs={name: epoch_means(path) for name, path in kl_runs.items()},
        kl_last={name: float(np.mean([v for _, v in points[-3:]])) for name, points in curves.items()},
    )
    write_json_atomic(out / "results.json", payload)
    report = (out / "report.md").read_text() + _section(payload, kl_plot, out)
    write_text_atomic(out / "report.md", report)
    return payload
