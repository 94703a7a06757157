"""The hive-mind question of issue 20 on the two real-model runs, measured with ``compare``.

For every seed both runs have, ``spectrum-tune compare`` (``analysis.compare.compare_runs``) puts
the six held-out evaluations side by side -- base, sft and the chosen spectrum arm of SmolLM2 (chat
prompts) and of Gemma-3-270m (plain prompts), matched by position on extracted answers -- into
``<out>/seed-<s>/``. Then it prints, per arm, the cross-model cell (SmolLM2's arm vs Gemma's) of the
homogeneity, top-1 agreement and exact score-mode JS matrices, mean [min, max] over seeds, and the
same model's arm across two seeds as the sampling-noise reference (how alike one model is to itself).

    python scripts/compare_real_models.py runs/real-smollm2 runs/real-gemma --out runs/real-compare
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from spectrum_tune.analysis.compare import compare_runs

ARMS = ("base", "sft", "spectrum")
METRICS = (
    ("homogeneity", "homogeneity (1 - JS/ln 2), sampled"),
    ("top1", "top-1 agreement"),
    ("score_js", "score-mode JS (exact)"),
)


def arm_evals(run: Path) -> dict[str, dict[str, Path]]:
    """arm -> seed -> eval directory, from the run's results.json (the chosen spectrum setting)."""
    runs = json.loads((run / "results.json").read_text())["runs"]
    return {arm: {seed: Path(path) / "eval" for seed, path in runs[arm].items()} for arm in ARMS}


def cross_cells(first: dict, second: dict, out: Path, tag: str, pairs: list[tuple[str, str]]) -> dict:
    """compare_runs on the given (label, eval dir) runs; the homogeneity summary of each pair."""
    labels = [label for label, _ in first.items()] + [label for label, _ in second.items()]
    payload = compare_runs([*first.values(), *second.values()], out / tag, labels)
    overall = payload["homogeneity"]["overall"]
    index = {label: i for i, label in enumerate(labels)}
    return {
        pair: {key: overall[key][index[pair[0]]][index[pair[1]]] for key, _ in METRICS if key in overall}
        for pair in pairs
    }


def _stat(values: list[float | None]) -> str:
    finite = [v for v in values if v is not None]
    if not finite:
        return "–"
    mean = float(np.mean(finite))
    return f"{mean:.3f}" if len(finite) == 1 else f"{mean:.3f} [{min(finite):.3f}, {max(finite):.3f}]"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chat_run", type=Path, help="the smollm2-real demo directory")
    parser.add_argument("plain_run", type=Path, help="the gemma3-270m-real demo directory")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    chat, plain = arm_evals(args.chat_run), arm_evals(args.plain_run)
    seeds = sorted(set(chat["sft"]) & set(plain["sft"]), key=int)
    cross: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    for seed in seeds:
        cells = cross_cells(
            {f"smollm2-{arm}": chat[arm][seed] for arm in ARMS},
            {f"gemma-{arm}": plain[arm][seed] for arm in ARMS},
            args.out,
            f"seed-{seed}",
            [(f"smollm2-{arm}", f"gemma-{arm}") for arm in ARMS],
        )
        for arm in ARMS:
            cross[arm].append(cells[(f"smollm2-{arm}", f"gemma-{arm}")])
    noise: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    if len(seeds) > 1:  # one model against itself, seed 0 vs seed 1: what sampling alone gives
        for name, evals in (("smollm2", chat), ("gemma", plain)):
            cells = cross_cells(
                {f"{arm}-a": evals[arm][seeds[0]] for arm in ARMS},
                {f"{arm}-b": evals[arm][seeds[1]] for arm in ARMS},
                args.out,
                f"noise-{name}",
                [(f"{arm}-a", f"{arm}-b") for arm in ARMS],
            )
            for arm in ARMS:
                noise[arm].append(cells[(f"{arm}-a", f"{arm}-b")])
    print(f"held-out open tasks, seeds {', '.join(seeds)}; compare reports in {args.out}/")
    print(
        "| arm | "
        + " | ".join(f"SmolLM2 vs Gemma: {title}" for _, title in METRICS)
        + " | same model, two seeds: homogeneity | top-1 |"
    )
    print("|---" * (len(METRICS) + 3) + "|")
    for arm in ARMS:
        cells = [_stat([c.get(key) for c in cross[arm]]) for key, _ in METRICS]
        floor = [_stat([c.get(key) for c in noise[arm]]) for key in ("homogeneity", "top1")]
        print(f"| {arm} | " + " | ".join(cells + floor) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
