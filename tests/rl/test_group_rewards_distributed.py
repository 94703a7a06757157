"""The group rewards score whole GRPO groups, by position, on one process and on several.

trl's GRPOTrainer calls a reward on each process's slice of the generation batch only, and
groups the gathered rewards by position (``view(-1, num_generations)``). Here 2 processes (gloo,
``torchrun``) each get 6 of 12 completions with G = 4, so one group is split between them, and
two rows share their prompt text (see tests/rl/two_process_rewards.py). Every group reward must
give each process the slice of what one process gives on the whole batch, which is what each
group scored alone gives. Before, each process grouped its own slice by prompt text: rank 0
scored group 0 plus half of group 1 as one group of 6 against group 0's references.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ..launch import free_port
from .two_process_rewards import ROWS, G, StandInTrainer, generation_batch, group_rewards

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 180  # s; the launch takes ~10 s


def _alone(reward, rows, size: int = G) -> list[float | None]:
    """Each run of ``size`` completions of ``rows`` scored in a call of its own (one process, one
    group: no layout to get wrong)."""
    answers = []
    for prompt, references, weights, completions in rows:
        for start in range(0, len(completions), size):
            row = (prompt, references, weights, completions[start : start + size])
            prompts, texts, columns = generation_batch([row])
            answers += reward(prompts=prompts, completions=texts, num_generations=size, **columns)
    return answers


def test_one_process_whole_batch_scores_each_group_on_its_own_columns():
    prompts, completions, columns = generation_batch()
    for name, reward in group_rewards().items():
        whole = reward(prompts=prompts, completions=completions, num_generations=G, **columns)
        assert whole == pytest.approx(_alone(reward, ROWS), abs=1e-12), name
    # rows 0 and 1 (same prompt text) differ in references: scored as one group of 2G (what
    # grouping by prompt text did) they get other numbers, so the check above means something
    merged = {key: values[: 2 * G] for key, values in columns.items()}
    distribution = group_rewards()["distribution"]
    as_one = distribution(
        prompts=prompts[: 2 * G], completions=completions[: 2 * G], num_generations=2 * G, **merged
    )
    assert as_one != pytest.approx(_alone(distribution, ROWS[:2]))


def test_group_size_comes_from_the_calling_trainer_in_train_and_eval_mode():
    """Called by a trainer (found through TRL's log_extra callback) on one process: groups of its
    num_generations while training, of num_generations_eval in eval mode."""
    prompts, completions, columns = generation_batch()
    trainer = StandInTrainer(SimpleNamespace(num_processes=1, process_index=0), G, num_generations_eval=2)
    for name, reward in group_rewards().items():
        trained = reward(prompts=prompts, completions=completions, **columns, **trainer.reward_kwargs())
        assert trained == pytest.approx(_alone(reward, ROWS), abs=1e-12), name
    trainer.model.training = False
    for name, reward in group_rewards().items():
        evaluated = reward(prompts=prompts, completions=completions, **columns, **trainer.reward_kwargs())
        assert evaluated == pytest.approx(_alone(reward, ROWS, size=2), abs=1e-12), name


def test_two_processes_score_whole_groups_like_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
        "-m",
        "tests.rl.two_process_rewards",
        str(tmp_path),
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [part["world"] for part in ranks] == [2, 2]
    prompts, completions, columns = generation_batch()
    for name, reward in group_rewards().items():
        local = [ranks[rank]["answers"][name] for rank in (0, 1)]
        assert [len(part) for part in local] == [6, 6], name  # per-device 6, not a multiple of G
        whole = reward(prompts=prompts, completions=completions, num_generations=G, **columns)
        assert local[0] + local[1] == pytest.approx(whole, abs=1e-12), name
        assert whole == pytest.approx(_alone(reward, ROWS), abs=1e-12), name
