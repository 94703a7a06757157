"""Issue 26's experiment: can references built by ``data-build`` replace hand-written ones?

Trains SmolLM2-135M-Instruct's arms on ``data/real``'s training prompts -- SFT (one answer per
prompt), the spectrum arm on the hand-written references, and the same spectrum arm on each
``data-build`` output given with ``--built NAME=ROWS`` -- for ``--seeds`` seeds, evaluates them and
the base once per seed on the held-out split (``eval/real/chat``, 30 samples with answer
extraction, and score mode) and writes ``report.md`` / ``results.json`` under ``--out`` with the
issue's targets judged on seed means. Nothing here chooses a setting: the spectrum arms use the
alpha/beta the ``smollm2-real`` demo chose on the tuned split (``--alpha``/``--beta``, (1, 2)).

    python scripts/built_refs_experiment.py --out runs/built-exp \\
        --built smollm2=runs/built/smollm2 gemma=runs/built/gemma both=runs/built/both
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from spectrum_tune.demo.jobs import evaluate_arm, run_jobs, train_arm, worker_pool
from spectrum_tune.demo.real import extracted_means, extracted_table
from spectrum_tune.demo.report import write_demo_report
from spectrum_tune.evaluation.render import fmt, markdown_table
from spectrum_tune.io import write_json_atomic, write_text_atomic
from spectrum_tune.models import fetch_model
from spectrum_tune.training.train import SUMMARY_FILE

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
TASKS = [str(ROOT / "eval" / "real" / "chat")]
BUILD_KEYS = ("prompts", "rows", "references_mean", "entropy_bits_mean", "seconds_per_100_prompts")
KNOWN_SET_KEYS = ("references_valid", "mass_valid", "samples_valid")  # summary.json: known_valid_set


def _arg_pairs(pairs: list[str]) -> dict[str, Path]:
    built = {}
    for pair in pairs:
        name, sep, folder = pair.partition("=")
        if not sep or not (Path(folder) / "rows.jsonl").is_file():
            raise SystemExit(f"--built {pair}: expected NAME=DIR with DIR/rows.jsonl (a data-build output)")
        built[name] = Path(folder)
    return built


def _build_summary(folder: Path) -> dict[str, Any]:
    summary = json.loads((folder / "summary.json").read_text())
    known = summary.get("known_valid_set") or {}
    return {
        **{key: summary.get(key) for key in BUILD_KEYS},
        **{key: known.get(key) for key in KNOWN_SET_KEYS},
    }


def judge_targets(means: dict[str, dict[str, float]], builds: dict[str, dict[str, Any]]) -> list[dict]:
    """The issue's targets on seed means; the best built arm is the one with the lowest score JS."""
    sft, hand = means["sft"], means["hand"]
    best = min(builds, key=lambda name: means[f"built-{name}"]["js"])
    arm = means[f"built-{best}"]
    reduction = (sft["js"] - arm["js"]) / (sft["js"] - hand["js"])
    checks = [
        (
            f"built references >= 90% valid ({name})",
            (build["references_valid"] or 0) >= 0.9,
            f"{fmt(build['references_valid'])} of the references of {build['rows']} rows "
            f"({build['prompts']} prompts)",
        )
        for name, build in builds.items()
    ]
    checks += [
        (
            "best built arm >= 70% of the hand-written arm's JS reduction over SFT",
            reduction >= 0.7,
            f"built-{best}: {reduction:.0%} (JS {arm['js']:.4f}; hand {hand['js']:.4f}; SFT {sft['js']:.4f})",
        ),
        (
            "best built arm's coverage >= 1.5x SFT (extracted)",
            arm["coverage_extracted"] >= 1.5 * sft["coverage_extracted"],
            f"{arm['coverage_extracted']:.3f} vs SFT {sft['coverage_extracted']:.3f}",
        ),
        (
            "best built arm's closed accuracy not below SFT by more than 2 points (extracted)",
            arm["accuracy_extracted"] >= sft["accuracy_extracted"] - 0.02,
            f"{arm['accuracy_extracted']:.3f} vs SFT {sft['accuracy_extracted']:.3f}",
        ),
    ]
    return [
        {"effect": name, "status": "PASS" if ok else "MISS", "detail": detail} for name, ok, detail in checks
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--built", nargs="+", required=True, help="NAME=DIR of each data-build output.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--beta", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    built = _arg_pairs(args.built)
    directory, gguf_file = fetch_model("smollm2")
    seeds, out = list(range(args.seeds)), args.out
    spectrum = str(RECIPES / "smollm2-real-spectrum.yaml")
    setting = ["--spectrum_alpha", str(args.alpha), "--spectrum_beta", str(args.beta)]
    arms: dict[str, tuple[str, list[str]]] = {
        "sft": (str(RECIPES / "smollm2-real-sft.yaml"), []),
        "hand": (spectrum, setting),
        **{
            f"built-{name}": (spectrum, [*setting, "--dataset_name", str(folder / "rows.jsonl")])
            for name, folder in built.items()
        },
    }
    runs = {arm: {seed: out / arm / f"seed-{seed}" for seed in seeds} for arm in ["base", *arms]}
    started = time.perf_counter()
    with worker_pool(args.workers) as executor:
        todo = [
            (train_arm, recipe, str(runs[arm][seed]), seed, None, extra)
            for arm, (recipe, extra) in arms.items()
            for seed in seeds
            if not (runs[arm][seed] / SUMMARY_FILE).is_file()
        ]
        run_jobs(executor, todo, "training arms", True)
        trained, trained_now = time.perf_counter(), len(todo)
        todo = [
            (
                evaluate_arm,
                str(directory),
                None if arm == "base" else str(path),
                str(path / "eval"),
                TASKS,
                seed,
                args.samples,
                gguf_file,
            )
            for arm, paths in runs.items()
            for seed, path in paths.items()
            if not (path / "eval" / "results.json").is_file()
        ]
        run_jobs(executor, todo, "evaluating (held-out)", True)
    # reused arms and evaluations cost nothing here, so the counts say what the seconds cover
    timings = {
        f"training ({trained_now} arms)": round(trained - started, 1),
        f"evaluating ({len(todo)} runs)": round(time.perf_counter() - trained, 1),
        "total": round(time.perf_counter() - started, 1),
    }
    builds = {name: _build_summary(folder) for name, folder in built.items()}
    extracted = extracted_means(runs)
    settings = {
        "seeds": len(seeds),
        "steps": None,
        "samples": args.samples,
        "alpha": args.alpha,
        "beta": args.beta,
        "recipes": {arm: Path(recipe).name for arm, (recipe, _) in arms.items()},
        "gguf_file": gguf_file,
    }
    training = {
        f"{arm}/seed-{seed}": json.loads((path / SUMMARY_FILE).read_text())["wall_seconds"]
        for arm, paths in runs.items()
        if arm != "base"
        for seed, path in paths.items()
    }
    payload = write_demo_report(
        out,
        runs,
        base_model=str(directory),
        timings=timings,
        training=training,
        settings=settings,
        check=lambda means: judge_targets({a: {**means[a], **extracted[a]} for a in means}, builds),
    )
    build_keys = [*BUILD_KEYS, *KNOWN_SET_KEYS]
    build_table = markdown_table(
        ["build", *build_keys], [[name, *(fmt(b[key]) for key in build_keys)] for name, b in builds.items()]
    )
    report = (out / "report.md").read_text()
    section = extracted_table(extracted)
    report += f"\n## Held-out metrics read with extraction (mean over seeds)\n\n{section}\n"
    report += f"\n## The builds (known valid sets of the training prompts)\n\n{build_table}\n"
    write_text_atomic(out / "report.md", report)
    write_json_atomic(out / "results.json", {**payload, "extracted": extracted, "builds": builds})
    print(f"wrote {out / 'report.md'} ({timings['total']:.0f} s)")


if __name__ == "__main__":
    main()
