"""The ``dpo`` command is preemption-safe like ``train`` (same mixin, spectrum_tune.training.preemption).

A DPO run on the toy model signals itself (SIGTERM, through tests/training/preempt_driver.py) in
step 3: it must stop after that step with a complete ``checkpoint-3`` and the resume line, and
resuming it must log exactly the uninterrupted run's losses (SGD, constant lr, sequential order,
full tuning of the toy model; rtol 1e-6). Before, the signal killed the run without a checkpoint.
GRPO shares the code path (``preemptible(GRPOTrainer)``) and is not run here (sampling makes it
the slowest stage).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml

from spectrum_tune.cli import main

from ..launch import DETERMINISTIC
from ..toy import save_toy

DRIVER = Path(__file__).parents[1] / "training" / "preempt_driver.py"
PAIRS = [
    ("Name a color.", "red", "red red red"),
    ("Pick a number between 1 and 3.", "2", "9"),
    ("Name a number.", "7", "10 10"),
    ("Pick a color.", "blue", "blue 1"),
]


def _losses(run_dir: Path) -> np.ndarray:
    history = json.loads((run_dir / "training_summary.json").read_text())["log_history"]
    return np.array([entry["loss"] for entry in history if "loss" in entry])


def test_dpo_stops_on_sigterm_with_a_checkpoint_and_resumes_to_the_same_losses(tmp_path):
    save_toy(tmp_path / "toy")
    rows = [
        {
            "prompt": [{"role": "user", "content": prompt}],
            "chosen": [{"role": "assistant", "content": good}],
            "rejected": [{"role": "assistant", "content": bad}],
        }
        for prompt, good, bad in PAIRS
    ]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    recipe = {
        "model_name_or_path": str(tmp_path / "toy"),
        "dataset_name": str(tmp_path / "pairs.jsonl"),
        **DETERMINISTIC,
        "max_steps": 5,
        "per_device_train_batch_size": 2,
        "save_steps": 2,
        "disable_tqdm": True,
    }
    (tmp_path / "dpo.yaml").write_text(yaml.safe_dump(recipe))

    def argv(name: str) -> list[str]:
        return ["dpo", "--config", str(tmp_path / "dpo.yaml"), "--output_dir", str(tmp_path / name)]

    assert main(argv("straight")) == 0
    straight = _losses(tmp_path / "straight")
    assert straight.shape == (5,)

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PREEMPT_AT": "step:3", "PREEMPT_SELF": "1"}
    done = subprocess.run(
        [sys.executable, str(DRIVER), *argv("stopped")], env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 128 + signal.SIGTERM, done.stderr[-3000:]
    assert "stopped by SIGTERM after step 3 of 5" in done.stderr.strip().splitlines()[-1]
    saved = sorted(path.name for path in (tmp_path / "stopped").glob("checkpoint-*"))
    assert saved == ["checkpoint-2", "checkpoint-3"]

    assert main([*argv("stopped"), "--resume_from_checkpoint", "true"]) == 0
    np.testing.assert_allclose(_losses(tmp_path / "stopped"), straight, rtol=1e-6)
