"""Choose the demo's tuning budget on the TUNED split only (never the held-out tasks).

    python scripts/calibrate_demo.py --arm spectrum --set learning_rate=3e-3 max_steps=200

Trains one arm from its recipe with the given overrides and prints score-mode JS and answer
probability on the tuning prompts (`split: tuned` tasks in eval/). Held-out numbers are never
computed here, so nothing about them can leak into the choice of hyperparameters.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from spectrum_tune.demo.run import ARMS  # noqa: E402
from spectrum_tune.evaluation.runner import EvalOptions, run_eval  # noqa: E402
from spectrum_tune.training.recipe import parse_train_args  # noqa: E402
from spectrum_tune.training.train import run_training  # noqa: E402
from spectrum_tune.world import tiny_model_path  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arm", choices=[*ARMS, "base"], required=True)
    parser.add_argument("--set", nargs="*", default=[], help="recipe overrides key=value")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    base = str(tiny_model_path())
    with tempfile.TemporaryDirectory() as tmp:
        adapter = None
        if args.arm != "base":
            argv = [
                "--config",
                str(ROOT / "recipes" / ARMS[args.arm]),
                "--output_dir",
                f"{tmp}/run",
                "--seed",
                str(args.seed),
                "--disable_tqdm",
                "true",
            ]
            for pair in args.set:
                key, value = pair.split("=", 1)
                argv += [f"--{key}", value]
            summary = run_training(*parse_train_args(argv))
            adapter = f"{tmp}/run"
            print(
                f"trained {summary['global_steps']} steps in {summary['wall_seconds']} s, "
                f"loss {summary['first_logged_loss']:.3f} -> {summary['last_logged_loss']:.3f}"
            )
        options = EvalOptions(
            model=base,
            adapter=adapter,
            tasks=["spread", "distribution", "accuracy"],
            out=Path(tmp) / "eval",
            mode="score",
            split="tuned",
            progress=False,
        )
        results = run_eval(options)
    js, answer = [], []
    for name, task in results["tasks"].items():
        score = task["metrics"].get("score", {})
        if "js" in score:
            js.append(score["js"])
            print(f"  {name:28s} JS {score['js']:.4f}  valid mass {score['valid_mass']:.3f}")
        elif "answer_prob" in score:
            answer.append(score["answer_prob"])
            print(f"  {name:28s} p(answer) {score['answer_prob']:.3f}")
    print(
        f"{args.arm} {' '.join(args.set)}: tuned-split mean JS {sum(js) / len(js):.4f}, "
        f"mean p(answer) {sum(answer) / len(answer):.3f}"
    )


if __name__ == "__main__":
    main()
