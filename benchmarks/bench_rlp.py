"""GRPO step time with RLP's information-gain reward vs a trivial reward, on the same rollouts, in one run.

    python benchmarks/bench_rlp.py                        # tiny model, 4 prefixes x 8 thoughts
    python benchmarks/bench_rlp.py --prompts 8 --generations 8 --rounds 5

One GRPOTrainer (the tiny model, full weights) on plain-text RLP rows (data/tiny/rlp-text.txt, 12 words
of context, 4 of continuation). Its first generation is kept and replayed for every later step, so
both arms score the same thoughts. A step = TRL's ``_generate_and_score_completions`` (replayed
rollouts, rewards, advantages) + ``compute_loss`` + backward + the EMA baseline update; the arms
alternate for ``--rounds`` rounds and each reports its median. Leaving out generation and the
optimizer makes the ratio stricter than a real step's. Baseline arm: a reward that returns the
thought's length (no model call); RLP arm: ``InformationGainReward`` (two forward passes without
gradient: the policy with the thought, the EMA baseline without it).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def length_reward(completions, **kwargs):
    """The trivial baseline reward: no model call."""
    return [float(len(c)) for c in completions]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--generations", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from datasets import Dataset

    from benchmarks.common import ReplayedGRPOSteps, bench_model
    from spectrum_tune.rl.information_gain import InformationGainReward, text_rows

    model, tokenizer = bench_model(None, args.threads)
    dataset = Dataset.from_list(text_rows(REPO / "data" / "tiny" / "rlp-text.txt", 12, 4))
    steps = ReplayedGRPOSteps(model, tokenizer, dataset, length_reward, args.prompts, args.generations)
    batch = steps.batch
    rlp = InformationGainReward(steps.trainer.model, tokenizer, baseline="ema", ema_decay=0.999)
    arms = {"length": length_reward, "information_gain": rlp}

    def step(arm: str) -> float:
        # the EMA update is what the callback does after each optimizer step: part of the cost
        return steps.step(arm, arms[arm], rlp.update_baseline if arm == "information_gain" else None)

    for arm in arms:  # warm-up (and the one real generation)
        step(arm)
    times: dict[str, list[float]] = {arm: [] for arm in arms}
    for _ in range(args.rounds):
        for arm in arms:
            times[arm].append(step(arm))
    median = {arm: statistics.median(values) for arm, values in times.items()}
    ratio = median["information_gain"] / median["length"]
    result = {
        "completions_per_step": batch,
        "rounds": args.rounds,
        "threads": args.threads,
        "step_seconds": {arm: round(value, 4) for arm, value in median.items()},
        "ratio_information_gain_vs_length": round(ratio, 4),
        "machine": platform.platform(),
    }
    print(
        f"GRPO step (replayed rollouts, {batch} thoughts): trivial reward {median['length']:.4f} s, "
        f"information gain {median['information_gain']:.4f} s -> ratio {ratio:.3f}x"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
