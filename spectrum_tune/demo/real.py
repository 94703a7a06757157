"""The real-model run (issue 20): base / sft / spectrum / in-context arms on realistic data.

``spectrum-tune demo --model smollm2-real`` (SmolLM2-135M-Instruct, chat prompts) and
``--model gemma3-270m-real`` (Gemma-3-270m pretrained base, plain-text prompts) each:

1. tune the fixed arms (``sft``; ``incontext`` where the model has chat turn tokens) and the
   spectrum arm once per alpha/beta setting of :data:`SWEEP` (alpha = beta = 1 is the
   Forcing-Diffuse loss), all from the recipes in ``recipes/`` on ``data/real``;
2. score every spectrum setting on the ``split: tuned`` tasks of ``eval/real/<style>`` only and keep
   the one with the lowest tuned score-mode JS (ties go to alpha = beta = 1) -- the sweep;
3. evaluate base, fixed arms and the chosen spectrum arm once on the ``split: heldout`` tasks, in
   sample (answer extraction on) and score mode, and write the demo report plus the sweep table,
   the training-KL curves and the issue's expected effects.

Held-out tasks are never used for choosing anything.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SpectrumError
from ..training.train import SUMMARY_FILE

__all__ = ["REAL_SETS", "SWEEP", "RealSet", "check_real_effects", "run_real"]


@dataclass(frozen=True)
class RealSet:
    """One real model's run: its registry entry, prompt style, fixed arms and spectrum recipe."""

    registry: str  # key of models.OFFLINE_MODELS
    style: str  # eval/real/<style>: chat (instruct model) or plain (pretrained base)
    arms: dict[str, str]  # arm -> recipe, trained as is
    spectrum: str  # recipe of the spectrum arm, trained once per SWEEP setting


REAL_SETS = {
    "smollm2-real": RealSet("smollm2", "chat", {"sft": "smollm2-real-sft.yaml",
                                                "incontext": "smollm2-real-incontext.yaml"},
                            "smollm2-real-spectrum.yaml"),
    # no in-context arm: the pretrained base has no chat template, hence no turn tokens to reuse
    "gemma3-270m-real": RealSet("gemma3-270m", "plain", {"sft": "gemma3-270m-real-sft.yaml"},
                                "gemma3-270m-real-spectrum.yaml"),
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


def plot_kl(curves: dict[str, list[tuple[int, float]]], path: Path, title: str) -> Path:
    from ..evaluation.render import new_figure, save_figure

    figure = new_figure(6.5, 3.4)
    ax = figure.subplots()
    for name, points in curves.items():
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, marker="o", markersize=3, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("training KL(w || q) (nats)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(figure, path)


def _extracted(results: dict[str, Any]) -> dict[str, float]:
    """Held-out sample metrics read with answer extraction (the fair reading of verbose answers)."""
    from .report import OPEN_KINDS, _metric, _tasks

    opened, spread = _tasks(results, ("open",)), _tasks(results, OPEN_KINDS)
    return {"coverage_extracted": _metric(opened, "sample", "coverage_extracted"),
            "validity_extracted": _metric(spread, "sample", "validity_extracted"),
            "accuracy_extracted": _metric(_tasks(results, ("closed",)), "sample", "validity_extracted")}


def check_real_effects(arms: dict[str, dict[str, float]], sweep: dict[str, dict[str, float]]) -> list[dict]:
    """The issue's expected effects, on held-out means (coverage read with extraction)."""
    spec, sft, base = arms["spectrum"], arms["sft"], arms["base"]
    equal = sweep[_sweep_name(1.0, 1.0)]["js"]
    best_unequal = min(v["js"] for k, v in sweep.items() if k != _sweep_name(1.0, 1.0))
    checks = [
        ("coverage >= 2x SFT (extracted)", spec["coverage_extracted"] >= 2 * sft["coverage_extracted"],
         f"spectrum {spec['coverage_extracted']:.3f} vs SFT {sft['coverage_extracted']:.3f}"),
        ("score JS <= 0.5x SFT and <= base", spec["js"] <= 0.5 * sft["js"] and spec["js"] <= base["js"],
         f"spectrum {spec['js']:.4f}, SFT {sft['js']:.4f}, base {base['js']:.4f}"),
        ("closed accuracy within 2 points of SFT (extracted)",
         abs(spec["accuracy_extracted"] - sft["accuracy_extracted"]) <= 0.02,
         f"spectrum {spec['accuracy_extracted']:.3f}, SFT {sft['accuracy_extracted']:.3f}"),
        ("alpha != beta at least matches alpha = beta = 1 (tuned JS)", best_unequal <= equal,
         f"best alpha != beta {best_unequal:.4f} vs alpha = beta = 1 {equal:.4f}"),
    ]
    return [{"effect": name, "status": "PASS" if ok else "MISS", "detail": detail}
            for name, ok, detail in checks]


def _section(payload: dict[str, Any], kl_plot: Path, out: Path) -> str:
    from ..evaluation.render import fmt, markdown_table

    sweep = payload["sweep"]
    rows = [[name, fmt(s["js"]), fmt(s["js_stated"]), fmt(s["valid_mass"]),
             "yes" if name == payload["chosen"] else ""] for name, s in sweep.items()]
    keys = ("coverage_extracted", "validity_extracted", "accuracy_extracted")
    extracted = markdown_table(["arm", *(key.replace("_", " (") + ")" for key in keys)],
                               [[arm, *(fmt(m[key]) for key in keys)]
                                for arm, m in payload["extracted"].items()])
    effects = markdown_table(["expected (issue 20)", "status", "measured"],
                             [[e["effect"], e["status"], e["detail"]] for e in payload["real_effects"]])
    return f"""
## alpha/beta sweep (tuned split only, score mode)

{markdown_table(["setting", "JS (score)", "JS stated odds", "valid mass", "chosen"], rows)}

## Held-out sample metrics with answer extraction

{extracted}

## Expected effects of issue 20

{effects}

## Training KL

![training KL]({kl_plot.relative_to(out).as_posix()})
"""


def _done(path: Path, marker: str) -> bool:
    return (path / marker).is_file()


def run_real(options: Any) -> dict[str, Any]:
    """Train, sweep on the tuned split, evaluate once on held-out tasks, write the report."""
    from ..io import write_json_atomic, write_text_atomic
    from ..models import fetch_model
    from .jobs import evaluate_arm, init_worker, run_jobs, train_arm
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
    out, seed, steps = options.out, 0, options.steps
    sweep_dirs = {_sweep_name(a, b): out / _sweep_name(a, b) / "seed-0" for a, b in SWEEP}
    arm_dirs = {arm: out / arm / "seed-0" for arm in real.arms}

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(options.workers, mp_context=context, initializer=init_worker) as executor:
        jobs = {arm: (train_arm, str(options.recipes_dir / recipe), str(arm_dirs[arm]), seed, steps)
                for arm, recipe in real.arms.items()}
        jobs.update({_sweep_name(a, b): (train_arm, str(options.recipes_dir / real.spectrum),
                                         str(sweep_dirs[_sweep_name(a, b)]), seed, steps,
                                         ["--spectrum_alpha", str(a), "--spectrum_beta", str(b)])
                     for a, b in SWEEP})
        dirs = {**arm_dirs, **sweep_dirs}
        # --reuse: arms already trained in --out are kept (a crash later on costs no training)
        todo = [name for name in jobs if not (options.reuse and _done(dirs[name], SUMMARY_FILE))]
        training = dict(zip(todo, run_jobs(executor, [jobs[name] for name in todo], "training arms",
                                            options.progress), strict=True))
        for name in jobs:
            if name not in training:
                summary = json.loads((dirs[name] / SUMMARY_FILE).read_text())
                training[name] = {key: summary[key] for key in ("global_steps", "wall_seconds",
                                                                "first_logged_loss", "last_logged_loss")}
        trained = time.perf_counter()
        run_jobs(executor, [(evaluate_arm, base, str(path), str(path / "eval-tuned"), tasks, seed, None,
                              gguf_file, "score", "tuned") for path in sweep_dirs.values()
                             if not (options.reuse and _done(path / "eval-tuned", "results.json"))],
                  "sweep (tuned split)", options.progress)
        sweep = {name: _tuned_score(path) for name, path in sweep_dirs.items()}
        chosen = choose_setting(sweep)
        swept = time.perf_counter()
        runs = {"base": {seed: out / "base" / "seed-0"},
                **{arm: {seed: path} for arm, path in arm_dirs.items()},
                "spectrum": {seed: sweep_dirs[chosen]}}
        run_jobs(executor, [(evaluate_arm, base, None if arm == "base" else str(paths[seed]),
                              str(paths[seed] / "eval"), tasks, seed, options.samples, gguf_file)
                             for arm, paths in runs.items()
                             if not (options.reuse and _done(paths[seed] / "eval", "results.json"))],
                  "evaluating (held-out)", options.progress)
    evaluated = time.perf_counter()

    timings = {"training": round(trained - started, 1), "sweep_eval": round(swept - trained, 1),
               "heldout_eval": round(evaluated - swept, 1), "total": round(evaluated - started, 1)}
    settings = {"seeds": 1, "quick": options.quick, "steps": steps, "samples": options.samples,
                "tasks": tasks, "workers": options.workers, "model": options.model,
                "recipes": {**real.arms, "spectrum": real.spectrum}, "gguf_file": gguf_file,
                "sweep": [list(setting) for setting in SWEEP]}
    payload = write_demo_report(out, runs, base_model=base, timings=timings, training=training,
                                settings=settings)
    from ..evaluation.report import load_results

    payload["extracted"] = {arm: _extracted(load_results(paths[seed] / "eval"))
                            for arm, paths in runs.items()}
    arms = {arm: {key: value["mean"] for key, value in metrics.items()}
            for arm, metrics in payload["arms"].items()}
    for arm, extra in payload["extracted"].items():
        arms[arm].update(extra)
    curves = kl_curves(sweep_dirs)
    kl_plot = plot_kl(curves, out / "plots" / "training_kl.png",
                      f"{options.model}: spectrum arms' training KL per logged step")
    payload.update(sweep=sweep, chosen=chosen, kl_curves=curves, real_effects=check_real_effects(arms, sweep),
                   kl_last={name: float(np.mean([v for _, v in points[-3:]]))
                            for name, points in curves.items()})
    write_json_atomic(out / "results.json", payload)
    report = (out / "report.md").read_text() + _section(payload, kl_plot, out)
    write_text_atomic(out / "report.md", report)
    return payload
