"""Preemption: a run signalled or killed at any point resumes to the uninterrupted run's losses.

Design. The real ``spectrum-tune train`` runs in a subprocess through ``preempt_driver.py``, which
pauses it at a chosen point (inside optimizer step N, or inside the save of ``checkpoint-N`` after
the weights and before the optimizer and trainer state) so the test can send its signal exactly
there; training is too fast to hit those points by timing. Settings are the deterministic ones of
test_distributed.py (toy model, SGD, constant lr, sequential sampling, logging every step), so a
resumed run must log exactly the uninterrupted run's loss at every step (rtol 1e-6; measured: equal).

What fails without the feature (checked on the main branch before it): SIGTERM kills the process
with no checkpoint of the current step (returncode -15, no checkpoint-3); SIGKILL during a save
leaves a ``checkpoint-4`` without trainer state that ``--resume_from_checkpoint true`` picks and
fails on with a raw ``ValueError`` traceback; an empty checkpoint named by hand is the same
traceback; the 2-process run has no checkpoint of the step where one rank was signalled.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from spectrum_tune.cli import main
from spectrum_tune.training.preemption import STAGING_PREFIX, checkpoint_problem, resolve_resume

from ..launch import DETERMINISTIC, accelerate_launch
from ..toy import save_toy
from .test_distributed import ROWS, _write_rows

ROOT = Path(__file__).parents[2]
DRIVER = Path(__file__).with_name("preempt_driver.py")
TIMEOUT = 120  # s for one subprocess run (~15 s on the loaded 2-core machine)
RTOL = 1e-6
STEPS = 6


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("preemption")
    save_toy(path / "toy")
    _write_rows(path / "train.jsonl", ROWS)
    recipe = {
        "model_name_or_path": str(path / "toy"),
        "dataset_name": str(path / "train.jsonl"),
        **DETERMINISTIC,
        "max_steps": STEPS,
        "per_device_train_batch_size": 2,
        "save_steps": 2,
        "disable_tqdm": True,
    }
    (path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return path


def _train(workdir: Path, name: str, *extra: str) -> int:
    recipe = str(workdir / "recipe.yaml")
    return main(["train", "--config", recipe, "--output_dir", str(workdir / name), *extra])


def _losses(run_dir: Path) -> np.ndarray:
    history = json.loads((run_dir / "training_summary.json").read_text())["log_history"]
    return np.array([entry["loss"] for entry in history if "loss" in entry])


@pytest.fixture(scope="module")
def uninterrupted(workdir) -> np.ndarray:
    assert _train(workdir, "uninterrupted", "--save_total_limit", "2") == 0
    # rotation still works on checkpoints renamed into place
    assert _checkpoints(workdir / "uninterrupted") == ["checkpoint-4", "checkpoint-6"]
    losses = _losses(workdir / "uninterrupted")
    assert losses.shape == (STEPS,) and len(set(losses.round(6))) == STEPS  # every step moves the loss
    return losses


def _interrupt(workdir: Path, name: str, at: str, signals: list[int], *extra: str) -> tuple[int, str]:
    """Run the train command until it pauses ``at`` (``step:N`` / ``save:N``), send ``signals``; its
    returncode and stderr."""
    marker = workdir / f"{name}-{at.replace(':', '-')}.marker"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PREEMPT_AT": at, "PREEMPT_MARKER": str(marker)}
    command = [
        sys.executable,
        str(DRIVER),
        "train",
        "--config",
        str(workdir / "recipe.yaml"),
        "--output_dir",
        str(workdir / name),
        *extra,
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + TIMEOUT
        while not marker.exists():
            assert process.poll() is None, f"the run ended before {at}: {process.communicate()[1][-3000:]}"
            assert time.monotonic() < deadline, f"the run never reached {at}"
            time.sleep(0.1)
        for signum in signals:
            process.send_signal(signum)
            time.sleep(0.3)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, stderr


def _checkpoints(run_dir: Path) -> list[str]:
    prefixes = ("checkpoint-", STAGING_PREFIX)
    return sorted(path.name for path in run_dir.iterdir() if path.name.startswith(prefixes))


def test_sigterm_in_a_step_saves_that_step_and_resumes_to_the_same_losses(workdir, uninterrupted, capsys):
    # SIGTERM then SIGINT (as a launcher forwarding the terminal's Ctrl-C a second time): the second
    # must not cut the checkpoint short.
    code, stderr = _interrupt(workdir, "step", "step:3", [signal.SIGTERM, signal.SIGINT])
    assert code == 128 + signal.SIGTERM, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("stopped by SIGTERM after step 3 of 6") and "--resume_from_checkpoint true" in last
    run_dir = workdir / "step"
    assert _checkpoints(run_dir) == ["checkpoint-2", "checkpoint-3"]
    assert checkpoint_problem(run_dir / "checkpoint-3") is None
    assert not (run_dir / "training_summary.json").exists()  # an interrupted run is not a finished one

    assert _train(workdir, "step", "--resume_from_checkpoint", "true") == 0
    np.testing.assert_allclose(_losses(run_dir), uninterrupted, rtol=RTOL)


def test_sigkill_in_a_save_leaves_no_checkpoint_dir_and_resume_takes_the_last_complete(
    workdir, uninterrupted, capsys
):
    code, _ = _interrupt(workdir, "killed", "save:4", [signal.SIGKILL])
    assert code == -signal.SIGKILL
    run_dir = workdir / "killed"
    # the half-written save is only the hidden staging folder; checkpoint-4 never appeared
    assert _checkpoints(run_dir) == [f"{STAGING_PREFIX}checkpoint-4", "checkpoint-2"]

    # naming the half-written one by hand: one line that names the last complete checkpoint
    capsys.readouterr()
    staged = run_dir / f"{STAGING_PREFIX}checkpoint-4" / "checkpoint-4"
    assert _train(workdir, "killed", "--resume_from_checkpoint", str(staged)) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(run_dir / "checkpoint-2") in error[0], error

    assert _train(workdir, "killed", "--resume_from_checkpoint", "true") == 0
    np.testing.assert_allclose(_losses(run_dir), uninterrupted, rtol=RTOL)
    assert _checkpoints(run_dir) == ["checkpoint-2", "checkpoint-4", "checkpoint-6"]  # staging cleaned up


def test_sigterm_in_a_save_then_again_after_resuming_reaches_the_same_losses(workdir, uninterrupted):
    # 1st preemption: inside the save of checkpoint-2, which completes; the run stops after step 3.
    code, stderr = _interrupt(workdir, "twice", "save:2", [signal.SIGTERM])
    assert code == 128 + signal.SIGTERM, stderr[-3000:]
    run_dir = workdir / "twice"
    assert _checkpoints(run_dir) == ["checkpoint-2", "checkpoint-3"]
    # 2nd preemption of the resumed run, in step 5
    resume = ["--resume_from_checkpoint", "true"]
    code, stderr = _interrupt(workdir, "twice", "step:5", [signal.SIGTERM], *resume)
    assert code == 128 + signal.SIGTERM, stderr[-3000:]
    assert "after step 5 of 6" in stderr
    assert _checkpoints(run_dir) == ["checkpoint-2", "checkpoint-3", "checkpoint-4", "checkpoint-5"]
    assert _train(workdir, "twice", "--resume_from_checkpoint", "true") == 0
    np.testing.assert_allclose(_losses(run_dir), uninterrupted, rtol=RTOL)


def test_an_incomplete_checkpoint_is_one_line_naming_the_last_complete(workdir, uninterrupted, capsys):
    run_dir = workdir / "uninterrupted"
    (run_dir / "checkpoint-20").mkdir()  # the case: killed as checkpoint-20/ appeared
    capsys.readouterr()
    assert _train(workdir, "uninterrupted", "--resume_from_checkpoint", str(run_dir / "checkpoint-20")) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "checkpoint-20" in error[0], error
    assert str(run_dir / "checkpoint-6") in error[0], error
    # `true` skips the incomplete one; a fresh directory has nothing to resume
    assert resolve_resume("true", run_dir) == str(run_dir / "checkpoint-6")
    assert resolve_resume(True, run_dir) == str(run_dir / "checkpoint-6")
    assert resolve_resume("false", run_dir) is None
    with pytest.raises(Exception, match="no complete checkpoint"):
        resolve_resume("true", workdir / "nothing-here")


@pytest.mark.slow
def test_a_signal_on_one_rank_stops_both_at_the_same_step(workdir, uninterrupted):
    """2 processes (gloo): rank 1 alone gets SIGTERM in step 2. Both ranks must stop after step 2 with
    one checkpoint (rank 0 would otherwise wait in the next gradient all-reduce), and resuming it
    in one process with the same global batch continues the uninterrupted run."""
    env = {"PREEMPT_AT": "step:2", "PREEMPT_SELF": "1", "PREEMPT_RANK": "1"}
    run_dir = workdir / "two-ranks"
    command = [
        str(DRIVER),
        "train",
        "--config",
        str(workdir / "recipe.yaml"),
        "--output_dir",
        str(run_dir),
        "--per_device_train_batch_size",
        "1",
    ]
    done = accelerate_launch(command, timeout=2 * TIMEOUT, env=env)
    assert done.returncode != 0  # the launcher reports its ranks' exit status 143
    # rank 0 says it, once
    assert done.stderr.count("stopped by SIGTERM after step 2 of 6") == 1, done.stderr[-4000:]
    assert _checkpoints(run_dir) == ["checkpoint-2"]
    assert {"rng_state_0.pth", "rng_state_1.pth"} <= {p.name for p in (run_dir / "checkpoint-2").iterdir()}
    assert _train(workdir, "two-ranks", "--resume_from_checkpoint", "true") == 0
    np.testing.assert_allclose(_losses(run_dir), uninterrupted, rtol=1e-5)  # test_distributed's tolerance
