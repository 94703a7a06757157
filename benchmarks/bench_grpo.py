"""GRPO step time: DARLING's diversity reward (quality x diversity) vs the quality reward alone,
on the same rollouts, in one run.

    python benchmarks/bench_grpo.py                        # tiny model, 8 prompts x 16 generations
    python benchmarks/bench_grpo.py --prompts 4 --generations 8 --rounds 5

One GRPOTrainer (the tiny model, LoRA off) on the tuning prompts. Its first generation is kept and
replayed for every later step, so both arms score the same completions. A step = TRL's
``_generate_and_score_completions`` (replayed rollouts, rewards, advantages, old log-probs) +
``compute_loss`` + backward; the arms alternate for ``--rounds`` rounds and each reports its median.
Leaving out generation and the optimizer makes the ratio stricter than a real step's (the reward's
share of a step is largest here). Quality = validity_reward; diversity =
diversity_reward(quality=validity_reward, equivalence="normalized").
Target: diversity <= 1.05x the quality step time.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--generations", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from benchmarks.common import ReplayedGRPOSteps, bench_model
    from spectrum_tune.rl.data import load_prompt_rows
    from spectrum_tune.rl.rewards import diversity_reward, validity_reward

    model, tokenizer = bench_model(None, args.threads)
    dataset = load_prompt_rows(str(REPO / "data" / "tiny" / "train-multiref.jsonl"))
    steps = ReplayedGRPOSteps(model, tokenizer, dataset, validity_reward, args.prompts, args.generations)
    batch, inputs, kept = steps.batch, steps.inputs, steps.kept
    arms = {"quality": validity_reward, "diversity": diversity_reward(quality=validity_reward)}

    def step(arm: str) -> float:
        return steps.step(arm, arms[arm])

    def reward_only(arm: str) -> float:
        prompts = [row["prompt"] for row in inputs]
        completions = copy.deepcopy(kept["rollouts"][3])
        columns = {key: [row[key] for row in inputs] for key in inputs[0] if key != "prompt"}
        started = time.perf_counter()
        arms[arm](prompts=prompts, completions=completions, num_generations=args.generations, **columns)
        return time.perf_counter() - started

    for arm in arms:  # warm-up (and the one real generation)
        step(arm)
    times = {arm: [] for arm in arms}
    reward_times = {arm: [] for arm in arms}
    for _ in range(args.rounds):
        for arm in arms:
            times[arm].append(step(arm))
            reward_times[arm].append(reward_only(arm))
    median = {arm: statistics.median(values) for arm, values in times.items()}
    reward_median = {arm: statistics.median(values) for arm, values in reward_times.items()}
    ratio = median["diversity"] / median["quality"]
    result = {
        "completions_per_step": batch,
        "rounds": args.rounds,
        "threads": args.threads,
        "step_seconds": {arm: round(value, 4) for arm, value in median.items()},
        "reward_seconds": {arm: round(value, 6) for arm, value in reward_median.items()},
        "generation_seconds_once": round(kept["seconds"], 3),
        "ratio_diversity_vs_quality": round(ratio, 4),
        "target": 1.05,
        "met": ratio <= 1.05,
        "machine": platform.platform(),
    }
    print(
        f"GRPO step (replayed rollouts, {batch} completions): quality {median['quality']:.4f} s, "
        f"diversity {median['diversity']:.4f} s -> ratio {ratio:.3f}x (target <= 1.05)"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
