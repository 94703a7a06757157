"""One generation batch scored by the group rewards on several processes, the way trl's
GRPOTrainer calls them: run under ``torchrun`` (gloo), each process calls every reward on its own
per-device slice only and writes its answers to ``<out>/rank<r>.json``.

Used by tests/rl/test_group_rewards_distributed.py, which also imports the batch and the rewards
from here to compute the one-process answers.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

G = 4  # num_generations


def _chat(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


# Three groups of G in TRL's order (row i's generations at positions [i * G, (i + 1) * G)).
# Rows 0 and 1 share their prompt text but not their references and weights. On 2 processes each
# gets 6 completions: group 1 is split between them, and rank 0 also holds group 0 (same text).
ROWS = [
    (_chat("Pick a number between 1 and 6."), ["1", "2", "3"], [0.5, 0.3, 0.2], ["1", "1", "2", "7"]),
    (_chat("Pick a number between 1 and 6."), ["2", "4"], [0.5, 0.5], ["2", "2", "4", "1"]),
    (_chat("Name a color."), ["red", "blue"], None, ["red", "red", "red", "blue"]),
]


def generation_batch(rows: list[tuple] = ROWS) -> tuple[list[Any], list[Any], dict[str, list[Any]]]:
    """(prompts, completions, columns) of ``rows``, each row repeated G times as TRL repeats it."""
    prompts, completions, references, weights = [], [], [], []
    for prompt, refs, row_weights, answers in rows:
        for answer in answers:
            prompts.append(prompt)
            completions.append([{"role": "assistant", "content": answer}])
            references.append(refs)
            weights.append(row_weights)
    return prompts, completions, {"references": references, "weights": weights}


def group_rewards() -> dict[str, Any]:
    """The group-level rewards, by name (diversity also with a group-level quality)."""
    from spectrum_tune.rl.rewards import distribution_reward, diversity_reward, popularity_reward

    return {
        "distribution": distribution_reward,
        "diversity": diversity_reward,
        "diversity_x_popularity": diversity_reward(quality=popularity_reward(margin=0.2)),
        "popularity": popularity_reward(margin=0.2),
    }


class StandInTrainer:
    """What the rewards read from the trl trainer that calls them (num_generations, the mode, the
    accelerator); they find it through the ``log_extra`` / ``log_metric`` callbacks TRL passes."""

    def __init__(self, accelerator: Any, num_generations: int, num_generations_eval: int | None = None):
        self.accelerator = accelerator
        self.num_generations = num_generations
        self.num_generations_eval = num_generations_eval or num_generations
        self.model = SimpleNamespace(training=True)
        self.logged: list[tuple[str, Any]] = []

    def _log_completion_extra(self, column: str, values: list) -> None:
        self.logged.append((column, values))

    def _log_metric(self, name: str, value: float) -> None:
        self.logged.append((name, value))

    def reward_kwargs(self) -> dict[str, Any]:
        """The callbacks TRL passes to every reward call (``trainer_state`` is not read)."""
        return {
            "trainer_state": None,
            "log_extra": self._log_completion_extra,
            "log_metric": self._log_metric,
        }


def main(out: str) -> None:
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    rank, world = accelerator.process_index, accelerator.num_processes
    prompts, completions, columns = generation_batch()
    per_device = len(prompts) // world
    local = slice(rank * per_device, (rank + 1) * per_device)  # accelerate's split of the batch
    trainer = StandInTrainer(accelerator, G)
    answers = {
        name: reward(
            prompts=prompts[local],
            completions=completions[local],
            **{key: values[local] for key, values in columns.items()},
            **trainer.reward_kwargs(),
        )
        for name, reward in group_rewards().items()
    }
    Path(out, f"rank{rank}.json").write_text(json.dumps({"world": world, "answers": answers}))
    # leave the gloo group together: exiting with it alive can abort ("terminate called ...")
    accelerator.wait_for_everyone()
    accelerator.end_training()


if __name__ == "__main__":
    main(sys.argv[1])
