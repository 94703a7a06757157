"""The demo's RL stage: does preference / RL training keep the spread a spectrum start has?

From ONE start (the tiny model tuned with ``recipes/tiny-spectrum.yaml``, its LoRA merged), on the
tuning prompts (``data/tiny/train-multiref.jsonl``), five arms per seed:

* ``grpo-quality``: GRPO with a quality reward that mildly prefers popular answers
  (:func:`~spectrum_tune.rl.rewards.popularity_reward`: validity x (0.8 + 0.2 x the share of the
  group giving the same answer) -- a stand-in for a learned reward model, which rewards typical
  answers);
* ``grpo-diversity``: the same GRPO, reward = that quality x DARLING's diversity;
* ``grpo-distribution``: the same GRPO, reward = that quality + the distribution reward;
* ``dpo-ordinary``: DPO on ordinary pairs from 16 samples per prompt of the start (chosen = the best
  by that quality, i.e. the most popular valid answer; rejected = the worst);
* ``dpo-divpo``: DPO on DivPO pairs from the same pools (quality threshold 0.5: chosen = the rarest
  valid answer, rejected = the most repeated invalid one).

The start and every arm are evaluated on held-out task files only (eval/ suites, ``split: heldout``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import SpectrumError
from ..io import write_json_atomic, write_text_atomic
from .jobs import evaluate_arm, run_jobs, worker_pool
from .run import REPO_ROOT

__all__ = ["RL_ARMS", "RlDemoOptions", "check_rl_effects", "run_rl_demo"]

# arm -> (trainer, recipe, pairs kind for DPO arms)
RL_ARMS: dict[str, tuple[str, str, str | None]] = {
    "grpo-quality": ("grpo", "tiny-grpo.yaml", None),
    "grpo-diversity": ("grpo", "tiny-grpo-diversity.yaml", None),
    "grpo-distribution": ("grpo", "tiny-grpo-distribution.yaml", None),
    "dpo-ordinary": ("dpo", "tiny-dpo.yaml", "ordinary"),
    "dpo-divpo": ("dpo", "tiny-dpo.yaml", "divpo"),
}
PLAIN_OF = {
    "grpo-diversity": "grpo-quality",
    "grpo-distribution": "grpo-quality",
    "dpo-divpo": "dpo-ordinary",
}
START_RECIPE = "tiny-spectrum.yaml"
PROMPTS = REPO_ROOT / "data" / "tiny" / "train-multiref.jsonl"
RL_SUITES = ["spread", "distribution", "accuracy"]
POOL_SIZE = 16
HEADLINE = [
    ("validity", "validity (sample)"),
    ("accuracy", "accuracy (closed)"),
    ("coverage", "coverage"),
    ("js_sample", "JS (sample)"),
    ("js", "JS (score)"),
]


@dataclass
class RlDemoOptions:
    """What ``spectrum-tune demo --stage rl`` takes."""

    out: Path
    seeds: int = 3
    steps: int | None = None  # every arm's max_steps (default: the recipes')
    start_steps: int | None = None  # the spectrum start's max_steps (default: its recipe's)
    samples: int = 50
    workers: int = 2
    recipes_dir: Path = field(default_factory=lambda: REPO_ROOT / "recipes")
    tasks: list[str] = field(default_factory=lambda: list(RL_SUITES))
    progress: bool = True

    def __post_init__(self) -> None:
        self.out, self.recipes_dir = Path(self.out), Path(self.recipes_dir)
        if self.seeds < 1 or self.workers < 1 or self.samples < 1:
            raise SpectrumError("--seeds, --workers and --samples must be >= 1")


def _make_start(recipe: str, out: str, steps: int | None) -> str:
    """Tune the start with the spectrum recipe and merge its LoRA, so every arm starts from one model."""
    from ..models import load_model, load_tokenizer
    from ..training.recipe import parse_train_args
    from ..training.train import run_training

    adapter, merged = Path(out) / "adapter", Path(out) / "model"
    argv = [
        "--config",
        recipe,
        "--output_dir",
        str(adapter),
        "--seed",
        "0",
        "--overwrite_output_dir",
        "true",
        "--disable_tqdm",
        "true",
    ]
    if steps is not None:
        argv += ["--max_steps", str(steps)]
    run_args, config, model_args = parse_train_args(argv)
    run_training(run_args, config, model_args)
    model = load_model(model_args.model_name_or_path, adapter=str(adapter)).merge_and_unload()
    model.save_pretrained(merged)
    load_tokenizer(model_args.model_name_or_path).save_pretrained(merged)
    return str(merged)


def _make_pairs(start: str, out: str, seed: int) -> dict[str, int]:
    """Sample the start's pools on the tuning prompts; write ordinary and DivPO pairs from them."""
    from ..evaluation.runner import load_for_eval
    from ..rl.data import file_rows
    from ..rl.divpo import divpo_pairs, preference_pairs, sample_pools
    from ..rl.rewards import popularity_reward

    model, tokenizer = load_for_eval(start)
    rows = [row for _, row in file_rows(str(PROMPTS))]
    pools = sample_pools(rows, model, tokenizer, POOL_SIZE, max_new_tokens=8, seed=seed)
    quality = popularity_reward(margin=0.2)
    counts = {}
    for kind, pairs in (
        ("ordinary", preference_pairs(pools, quality=quality)),
        ("divpo", divpo_pairs(pools, quality=quality, threshold=0.5)),
    ):
        write_text_atomic(Path(out) / f"{kind}.jsonl", "".join(json.dumps(p) + "\n" for p in pairs))
        counts[kind] = len(pairs)
    return counts


def _train_rl_arm(
    kind: str, recipe: str, start: str, output_dir: str, seed: int, steps: int | None, dataset: str | None
) -> dict[str, Any]:
    from ..rl.recipe import parse_dpo_args, parse_grpo_args
    from ..rl.train import run_dpo, run_grpo

    argv = [
        "--config",
        recipe,
        "--model_name_or_path",
        start,
        "--output_dir",
        output_dir,
        "--seed",
        str(seed),
        "--overwrite_output_dir",
        "true",
        "--disable_tqdm",
        "true",
    ]
    if steps is not None:
        argv += ["--max_steps", str(steps)]
    if dataset is not None:
        argv += ["--dataset_name", dataset]
    summary = run_grpo(*parse_grpo_args(argv)) if kind == "grpo" else run_dpo(*parse_dpo_args(argv))
    keys = (
        "global_steps",
        "wall_seconds",
        "rows",
        "first_logged_loss",
        "last_logged_loss",
        "first_logged_reward",
        "last_logged_reward",
    )
    return {key: summary.get(key) for key in keys}


def _task_files(specs: list[str]) -> list[str]:
    """The held-out task files of the suites, free-text tasks left out: the RL stage is about answer
    spread (JS, coverage, validity), and free-text sampling would take most of its time."""
    from ..evaluation.tasks import resolve_tasks

    return [str(task.path) for task in resolve_tasks(specs, split="heldout") if task.kind != "freetext"]


def run_rl_demo(options: RlDemoOptions) -> dict[str, Any]:
    """Start, pools, every arm for every seed, held-out eval, report (see the module docstring)."""
    for _, recipe, _ in RL_ARMS.values():
        if not (options.recipes_dir / recipe).is_file():
            raise SpectrumError(f"RL demo recipe '{options.recipes_dir / recipe}' does not exist")
    started = time.perf_counter()
    seeds = list(range(options.seeds))
    tasks = _task_files(options.tasks)
    out = options.out
    runs = {arm: {seed: out / arm / f"seed-{seed}" for seed in seeds} for arm in ["start", *RL_ARMS]}
    with worker_pool(options.workers) as executor:
        start = executor.submit(
            _make_start, str(options.recipes_dir / START_RECIPE), str(out / "start"), options.start_steps
        ).result()
        pair_jobs = [(_make_pairs, start, str(out / "pairs" / f"seed-{seed}"), seed) for seed in seeds]
        pair_counts = dict(
            zip(seeds, run_jobs(executor, pair_jobs, "sampling pools", options.progress), strict=True)
        )
        prepared = time.perf_counter()
        jobs, names = [], []
        for seed in seeds:
            for arm, (kind, recipe, pairs) in RL_ARMS.items():
                dataset = str(out / "pairs" / f"seed-{seed}" / f"{pairs}.jsonl") if pairs else None
                jobs.append(
                    (
                        _train_rl_arm,
                        kind,
                        str(options.recipes_dir / recipe),
                        start,
                        str(runs[arm][seed]),
                        seed,
                        options.steps,
                        dataset,
                    )
                )
                names.append(f"{arm}/seed-{seed}")
        training = dict(
            zip(names, run_jobs(executor, jobs, "training RL arms", options.progress), strict=True)
        )
        trained = time.perf_counter()
        eval_jobs = []
        for seed in seeds:
            for arm in runs:
                model, adapter = (start, None) if arm == "start" else (start, str(runs[arm][seed]))
                eval_jobs.append(
                    (
                        evaluate_arm,
                        model,
                        adapter,
                        str(runs[arm][seed] / "eval"),
                        tasks,
                        seed,
                        options.samples,
                    )
                )
        run_jobs(executor, eval_jobs, "evaluating", options.progress)
    evaluated = time.perf_counter()
    timings = {
        "start_and_pools": round(prepared - started, 1),
        "training": round(trained - prepared, 1),
        "evaluation": round(evaluated - trained, 1),
        "total": round(evaluated - started, 1),
    }
    settings = {
        "seeds": len(seeds),
        "steps": options.steps,
        "start_steps": options.start_steps,
        "samples": options.samples,
        "tasks": [Path(task).stem for task in tasks],
        "pool_size": POOL_SIZE,
        "arms": {arm: recipe for arm, (_, recipe, _) in RL_ARMS.items()},
        "pairs": pair_counts,
    }
    return write_rl_report(out, runs, timings=timings, training=training, settings=settings)


def check_rl_effects(means: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """The issue's expected effects on seed means: plain arms lose spread vs the start (coverage
    falls, score JS rises); each spectrum arm keeps it (JS <= 0.5x its plain arm's) with validity
    within 2 points of it (|difference|, either direction, as the issue states it)."""
    effects = []
    start = means["start"]
    for plain in ("grpo-quality", "dpo-ordinary"):
        arm = means[plain]
        lost = arm["coverage"] < start["coverage"] and arm["js"] > start["js"]
        effects.append(
            {
                "effect": f"{plain} loses spread (coverage falls, JS rises vs start)",
                "status": "PASS" if lost else "MISS",
                "detail": f"coverage {start['coverage']:.3f} -> {arm['coverage']:.3f}, "
                f"JS {start['js']:.4f} -> {arm['js']:.4f}",
            }
        )
    for spectrum, plain in PLAIN_OF.items():
        # two effects per arm, so a met JS target is not hidden by a missed validity band (or back)
        ours, theirs = means[spectrum], means[plain]
        effects.append(
            {
                "effect": f"{spectrum}: JS <= 0.5x {plain}",
                "status": "PASS" if ours["js"] <= 0.5 * theirs["js"] else "MISS",
                "detail": f"JS {ours['js']:.4f} vs 0.5x {0.5 * theirs['js']:.4f}",
            }
        )
        gap = ours["validity"] - theirs["validity"]
        effects.append(
            {
                "effect": f"{spectrum}: validity within 2 points of {plain}",
                "status": "PASS" if abs(gap) <= 0.02 else "MISS",
                "detail": f"validity {ours['validity']:.3f} vs {theirs['validity']:.3f} "
                f"({100 * gap:+.1f} points)",
            }
        )
    return effects


def write_rl_report(
    out: Path,
    runs: dict[str, dict[int, Path]],
    *,
    timings: dict[str, float],
    training: dict[str, Any],
    settings: dict[str, Any],
) -> dict[str, Any]:
    """out/results.json and out/report.md: the headline table (mean [min, max] over seeds) and effects."""
    from ..evaluation.render import fmt, markdown_table
    from ..evaluation.report import load_results
    from .report import _aggregate, headline_metrics

    per_seed = {
        arm: [headline_metrics(load_results(path / "eval")) for path in by_seed.values()]
        for arm, by_seed in runs.items()
    }
    summary = _aggregate(per_seed)
    means = {arm: {key: value["mean"] for key, value in metrics.items()} for arm, metrics in summary.items()}
    effects = check_rl_effects(means)
    rows = [
        [arm]
        + [
            f"{fmt(summary[arm][key]['mean'])} [{fmt(summary[arm][key]['min'])}, "
            f"{fmt(summary[arm][key]['max'])}]"
            for key, _ in HEADLINE
        ]
        for arm in runs
    ]
    table = markdown_table(["arm", *(label for _, label in HEADLINE)], rows)
    effect_table = markdown_table(
        ["effect", "status", "measured"], [[e["effect"], e["status"], e["detail"]] for e in effects]
    )
    pairs = ", ".join(
        f"seed {seed}: {c['ordinary']} ordinary / {c['divpo']} DivPO" for seed, c in settings["pairs"].items()
    )
    report = (
        f"# RL stage: held-out spread after GRPO / DPO from one spectrum start\n\n"
        f"{len(settings['pairs'])} seeds, mean [min, max]; {settings['samples']} samples per prompt; "
        f"{timings['total']} s ({timings}).\nPairs from {settings['pool_size']} samples per tuning "
        f"prompt: {pairs}.\n\n{table}\n\n{effect_table}\n"
    )
    write_text_atomic(out / "report.md", report)
    payload = {
        "schema_version": 1,
        "arms": summary,
        "effects": effects,
        "timings_seconds": timings,
        "training": training,
        "settings": settings,
    }
    write_json_atomic(out / "results.json", payload)
    return payload
