"""The end-to-end demo: mode collapse and its cure on the tiny offline model, measured honestly.

From the same base model and the same prompts, four arms are tuned with the shipped recipes —
``sft`` (one answer per prompt), ``gem`` (GEM on the same one-answer data), ``iid`` (token loss
on i.i.d. draws from the targets) and ``spectrum`` (SFT + spectrum loss on the multi-reference
rows) — at the same steps and about the same sequences per step. The base and every arm are
then evaluated on HELD-OUT task files only (``split: heldout`` in eval/: new number ranges and
range widths, held-out categories, new stated distributions, held-out closed questions, new
in-context examples), in sample and score modes, over several seeds. ``demo_report`` aggregates
the runs and checks the expected effects.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpectrumError
from .jobs import evaluate_arm, run_jobs, train_arm, worker_pool

__all__ = ["ARMS", "ARM_SETS", "DemoOptions", "demo_seeds", "run_demo"]

ARMS = {
    "sft": "tiny-sft.yaml",
    "gem": "tiny-gem.yaml",
    "iid": "tiny-iid.yaml",
    "spectrum": "tiny-spectrum.yaml",
}
# Which recipes each base model is tuned with. The real-model set has only the two arms that
# carry the story (collapse under SFT, its cure); effects needing other arms report "n/a".
ARM_SETS = {
    "tiny": ARMS,
    "smollm2": {"sft": "smollm2-135m-sft.yaml", "spectrum": "smollm2-135m-spectrum-lora.yaml"},
}
# The real-model runs of issue 20 (spectrum_tune.demo.real): arms, sweep and tasks are there.
REAL_MODELS = ("smollm2-real", "gemma3-270m-real")
# Defaults that fit the 2-core budget (~30 min for the 135M demo; the real-data runs take 3 seeds,
# docs/real-models.md has their wall times); the tiny model's are the fields'.
SMALL_BUDGET = {
    "smollm2": {"seeds": 1, "samples": 30},
    **{name: {"seeds": 3, "samples": 30} for name in REAL_MODELS},
}
SUITES = ["spread", "distribution", "accuracy", "steer"]
REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DemoOptions:
    """What ``spectrum-tune demo`` takes."""

    out: Path
    seeds: int | None = None  # 3 for the tiny model, SMALL_BUDGET for real ones
    quick: bool = False
    steps: int | None = None
    samples: int | None = None
    workers: int = 2
    recipes_dir: Path = field(default_factory=lambda: REPO_ROOT / "recipes")
    tasks: list[str] = field(default_factory=lambda: list(SUITES))
    progress: bool = True
    model: str = "tiny"  # a key of ARM_SETS, or one of REAL_MODELS
    reuse: bool = False  # real-model runs: keep arms and evaluations already in `out`

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        self.recipes_dir = Path(self.recipes_dir)
        if self.model not in ARM_SETS and self.model not in REAL_MODELS:
            known = ", ".join([*ARM_SETS, *REAL_MODELS])
            raise SpectrumError(f"unknown demo model '{self.model}' (known: {known})")
        budget = SMALL_BUDGET.get(self.model, {})
        if self.seeds is None:
            self.seeds = budget.get("seeds", 3)
        if self.samples is None:
            self.samples = budget.get("samples")
        if self.quick:
            self.seeds = 1
        if self.seeds < 1 or self.workers < 1:
            raise SpectrumError("--seeds and --workers must be >= 1")


def demo_seeds(options: DemoOptions) -> list[int]:
    """The seeds every arm is trained and evaluated with: 0, 1, ... (pinned by a test, so that the
    demo's table is the same on every machine that loads the shipped tiny model)."""
    return list(range(options.seeds))


def run_demo(options: DemoOptions) -> dict[str, Any]:
    """Train every arm for every seed, evaluate base and arms on held-out tasks, write the report."""
    from ..world import tiny_model_path
    from .report import write_demo_report

    if options.model in REAL_MODELS:
        from .real import run_real

        return run_real(options)
    started = time.perf_counter()
    arms = ARM_SETS[options.model]
    for recipe in arms.values():
        if not (options.recipes_dir / recipe).is_file():
            raise SpectrumError(f"demo recipe '{options.recipes_dir / recipe}' does not exist")
    gguf_file = None
    if options.model == "tiny":
        base = str(tiny_model_path(progress=options.progress))
    else:
        from ..models import fetch_model

        directory, gguf_file = fetch_model(options.model)
        base = str(directory)
    built = time.perf_counter()
    steps = options.steps if options.steps is not None else (60 if options.quick else None)
    samples = options.samples if options.samples is not None else (50 if options.quick else None)
    seeds = demo_seeds(options)
    runs = {arm: {seed: options.out / arm / f"seed-{seed}" for seed in seeds} for arm in ["base", *arms]}

    with worker_pool(options.workers) as executor:
        pairs = [(arm, seed) for seed in seeds for arm in arms]
        train_jobs = [
            (train_arm, str(options.recipes_dir / arms[arm]), str(runs[arm][seed]), seed, steps)
            for arm, seed in pairs
        ]
        training = dict(
            zip(
                (f"{arm}/seed-{seed}" for arm, seed in pairs),
                run_jobs(executor, train_jobs, "training arms", options.progress),
                strict=True,
            )
        )
        trained = time.perf_counter()
        eval_jobs = [
            (
                evaluate_arm,
                base,
                None if arm == "base" else str(runs[arm][seed]),
                str(runs[arm][seed] / "eval"),
                options.tasks,
                seed,
                samples,
                gguf_file,
            )
            for seed in seeds
            for arm in runs
        ]
        run_jobs(executor, eval_jobs, "evaluating", options.progress)
    evaluated = time.perf_counter()

    timings = {
        "build_or_load_base": round(built - started, 1),
        "training": round(trained - built, 1),
        "evaluation": round(evaluated - trained, 1),
        "total": round(evaluated - started, 1),
    }
    settings = {
        "seeds": len(seeds),
        "quick": options.quick,
        "steps": steps,
        "samples": samples,
        "tasks": options.tasks,
        "workers": options.workers,
        "model": options.model,
        "recipes": dict(arms),
        "gguf_file": gguf_file,
    }
    return write_demo_report(
        options.out, runs, base_model=base, timings=timings, training=training, settings=settings
    )
