"""A real ``spectrum-tune grpo`` run on 2 processes scores whole GRPO groups.

``accelerate launch`` (the shipped ``recipes/accelerate/cpu-2proc.yaml``, gloo) runs the grpo
command on a random toy model with ``num_generations`` 4 and a per-device batch of 6, so each
generation batch (12 completions, 3 groups) has a group split between the processes; the prompts
repeat their text (4 rows "Name a color.", 2 rows "Pick a number."), so one process often holds
two groups with the same prompt. ``max_completion_length: 1`` with ``top_k: 2`` makes the groups
repeat answers, so the group rewards (diversity with no quality factor, popularity) depend on
which completions form a group.

A recording reward (tests/rl/grpo_recorder.py) writes what each process was given; the logged
``rewards/<name>/mean`` of each step must equal the rewards of the gathered generation batch
scored in one call of whole groups (what one process computes), and must differ from what the
processes' own slices grouped by prompt text give (what the rewards did before, so this test
fails there). A one-process run of the same recipe (per-device batch 12) goes through the same
check; its completions are sampled differently, so the two runs' numbers are not compared.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from spectrum_tune.cli import main
from spectrum_tune.rl.rewards import diversity_reward, popularity_reward

from ..launch import accelerate_launch
from ..toy import save_toy

ROOT = Path(__file__).resolve().parents[2]
G = 4
TIMEOUT = 300  # s; the launch takes ~30 s on the shared 2 cores
REWARDS = {
    "diversity_reward": diversity_reward(quality=None),
    "popularity_reward": popularity_reward(margin=0.2),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("grpo-distributed")
    save_toy(path / "toy")
    texts = ["Name a color."] * 4 + ["Pick a number."] * 2
    rows = [{"prompt": [{"role": "user", "content": text}]} for text in texts]
    (path / "prompts.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _recipe(workdir: Path, name: str, per_device: int) -> Path:
    recipe = {
        "model_name_or_path": str(workdir / "toy"),
        "dataset_name": str(workdir / "prompts.jsonl"),
        "output_dir": str(workdir / name),
        "reward_funcs": ["diversity", "popularity", "tests.rl.grpo_recorder.record"],
        "diversity_quality": "none",
        "popularity_margin": 0.2,
        "num_generations": G,
        "per_device_train_batch_size": per_device,
        "max_completion_length": 1,
        "top_k": 2,
        "temperature": 2.0,
        "beta": 0.0,
        "use_peft": False,
        "max_steps": 2,
        "learning_rate": 1.0e-3,
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "seed": 0,
        "use_cpu": True,
        "bf16": False,
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    (workdir / f"{name}-record").mkdir()
    return path


def _steps(workdir: Path, name: str, ranks: int) -> list[list[dict]]:
    """Per step, each process's recorded call (the recorder runs once per generation batch)."""
    files = [workdir / f"{name}-record" / f"rank{rank}.jsonl" for rank in range(ranks)]
    calls = [[json.loads(line) for line in path.read_text().splitlines()] for path in files]
    assert len({len(per_rank) for per_rank in calls}) == 1
    return [list(step) for step in zip(*calls, strict=True)]


def _logged(workdir: Path, name: str) -> dict[str, np.ndarray]:
    history = json.loads((workdir / name / "training_summary.json").read_text())["log_history"]
    steps = [entry for entry in history if "loss" in entry]
    return {key: np.array([entry[f"rewards/{key}/mean"] for entry in steps]) for key in REWARDS}


def _whole_groups(calls: list[dict], reward) -> float:
    """The mean reward of the gathered generation batch, each run of G scored in a call of its own
    (one process, one group: nothing for a layout to get wrong)."""
    prompts = [prompt for call in calls for prompt in call["prompts"]]
    completions = [completion for call in calls for completion in call["completions"]]
    rewards = []
    for start in range(0, len(prompts), G):
        group = slice(start, start + G)
        rewards += reward(prompts=prompts[group], completions=completions[group], num_generations=G)
    return float(np.mean(rewards))


def _by_prompt_text(calls: list[dict], reward) -> float:
    """What the rewards gave before: each process grouped its own slice by prompt text."""
    rewards = []
    for call in calls:
        groups: dict[str, list[int]] = {}
        for index, prompt in enumerate(call["prompts"]):
            groups.setdefault(json.dumps(prompt), []).append(index)
        for group in groups.values():
            rewards += reward(
                prompts=[call["prompts"][i] for i in group],
                completions=[call["completions"][i] for i in group],
                num_generations=len(group),
            )
    return float(np.mean(rewards))


def _check(workdir: Path, name: str, ranks: int) -> None:
    logged, steps = _logged(workdir, name), _steps(workdir, name, ranks)
    assert len(steps) == 2 and all(len(call["prompts"]) == 3 * G // ranks for call in steps[0])
    for key, reward in REWARDS.items():
        expected = [_whole_groups(calls, reward) for calls in steps]
        np.testing.assert_allclose(logged[key], expected, rtol=1e-6, err_msg=key)
    # grouping each process's slice by prompt text gives other numbers here: the check can fail
    before = {key: [_by_prompt_text(calls, reward) for calls in steps] for key, reward in REWARDS.items()}
    assert any(not np.allclose(before[key], logged[key], rtol=1e-6) for key in REWARDS)


def test_grpo_on_two_processes_scores_whole_groups(workdir):
    recipe = _recipe(workdir, "two", per_device=6)  # 6 completions per process, G = 4
    done = accelerate_launch(
        ["-m", "spectrum_tune.cli", "grpo", "--config", str(recipe)],
        timeout=TIMEOUT,
        env={"SPECTRUM_TEST_RECORD": str(workdir / "two-record")},
    )
    assert done.returncode == 0, done.stderr[-4000:]
    _check(workdir, "two", ranks=2)


def test_grpo_on_one_process_scores_the_same_way(workdir, monkeypatch):
    monkeypatch.setenv("SPECTRUM_TEST_RECORD", str(workdir / "one-record"))
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.chdir(ROOT)  # the recipe names the recorder by its import path from the repository root
    assert main(["grpo", "--config", str(_recipe(workdir, "one", per_device=2 * 6))]) == 0
    _check(workdir, "one", ranks=1)
