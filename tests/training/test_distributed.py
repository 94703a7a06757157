"""Data parallelism: 2 CPU processes train exactly like 1 process with the same global batch.

Design. ``accelerate launch`` (the shipped ``recipes/accelerate/cpu-2proc.yaml``, gloo backend)
runs ``python -m spectrum_tune.cli train`` in 2 processes with 2 groups each; the baselines run
in this process with 4 groups per step, or 2 groups x 2 gradient-accumulation micro-batches.
Everything else is fixed so the only difference is where the reductions happen:

- data order: ``train_sampling_strategy: sequential``. accelerate's ``BatchSamplerShard`` hands
  the i-th per-device batch of the sequential order to rank i, so step 1 is groups 0-3 in every
  run (rank 0 gets 0-1, rank 1 gets 2-3), step 2 groups 4-7, and so on;
- optimizer: plain SGD with a constant learning rate. Adam would divide near-zero gradient
  entries by their own magnitude, so float noise in a cancelling sum could flip an update's
  sign; SGD keeps a float-rounding difference in the gradient a rounding difference in the
  weights;
- full fine-tuning of the random toy model (LoRA's zero-initialised B would make half the
  gradients exactly zero and the check weaker);
- the groups differ in K (1 to 4) and in reference length, and rank 0's groups are much shorter
  than rank 1's, so normalising per rank (mean of the ranks' losses instead of the global sum
  of group losses over the global sum of denominators) gives different numbers; the last test
  shows that it does, so the comparison can fail.

Tolerance: rtol 1e-5 on the logged loss and grad norm of every step. The runs differ only in
float32 summation order (the gloo all-reduce of gradients, the gathered denominators), which is
~1e-7 relative per step; 4 SGD steps stay far below 1e-5 (measured: <= 2.2e-7), while a
normalisation error moves the numbers by percent (measured: normalising per rank changes the
loss by up to 5% and the grad norm by up to 49%).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from spectrum_tune.cli import main

from ..launch import DETERMINISTIC, accelerate_launch
from ..toy import save_toy

ROOT = Path(__file__).parents[2]
RTOL = 1e-5

# Groups in data order; the global batch is 4 groups, so rank 0 gets rows 0-1 and rank 1 rows 2-3
# at step 1 (rows 4-5 and 6-7 at step 2). Rank 0's references are short, rank 1's long.
ROWS = [
    ("Name a color.", ["red"], None),
    ("Pick a number between 1 and 3.", ["1", "2", "3"], [0.5, 0.3, 0.2]),
    ("Name a color and a number.", ["red 1 2 3 4 5 6 7", "blue 10 9 8 7 6 5 4 3 2 1", "green 3 3 3"], None),
    ("Name a number.", ["10 9 8 7 6 5 4 3 2 1 10 9 8 7"], None),
    ("Pick a number between 4 and 5.", ["4", "5"], [0.9, 0.1]),
    ("Name a color.", ["yellow"], None),
    ("Name two colors.", ["red green blue yellow red green", "blue blue"], [0.2, 0.8]),
    ("Pick a color and a number.", ["red 7 green 8 blue 9 yellow 10", "green 1", "blue 2 2 2", "red"], None),
]


# K = 1 rows (GEM's) on rank 0 only: rows 0-1 and 4-5 go to rank 0, rows 2-3 and 6-7 to rank 1.
GEM_ROWS = [
    ("Name a color.", ["red"], None),
    ("Pick a number between 1 and 3.", ["1", "2", "3"], [0.5, 0.3, 0.2]),
    ("Name a color and a number.", ["red 1 2 3 4 5 6 7", "blue 10 9 8 7 6 5 4 3 2 1", "green 3 3 3"], None),
    ("Name two colors.", ["red green blue yellow red green", "blue blue"], [0.2, 0.8]),
    ("Name a number.", ["10 9 8 7 6 5 4 3 2 1 10 9 8 7"], None),
    ("Pick a color.", ["yellow"], None),
    ("Pick a number between 4 and 5.", ["4", "5"], [0.9, 0.1]),
    ("Pick a color and a number.", ["red 7 green 8 blue 9 yellow 10", "green 1", "blue 2 2 2", "red"], None),
]


def _write_rows(path: Path, rows) -> None:
    lines = []
    for prompt, references, weights in rows:
        row = {"prompt": [{"role": "user", "content": prompt}], "references": references}
        if weights:
            row["weights"] = weights
        lines.append(json.dumps(row) + "\n")
    path.write_text("".join(lines))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("distributed")
    save_toy(path / "toy")
    _write_rows(path / "train.jsonl", ROWS)
    _write_rows(path / "gem.jsonl", GEM_ROWS)
    return path


def _recipe(workdir: Path, name: str, **extra) -> Path:
    recipe = {
        "model_name_or_path": str(workdir / "toy"),
        "dataset_name": str(workdir / "train.jsonl"),
        "output_dir": str(workdir / name),
        **DETERMINISTIC,
        "max_steps": 4,
        "save_strategy": "no",
        **extra,
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _trajectory(workdir: Path, name: str) -> np.ndarray:
    """``[steps, 2]``: the logged loss and grad norm of every optimizer step."""
    history = json.loads((workdir / name / "training_summary.json").read_text())["log_history"]
    return np.array([[entry["loss"], entry["grad_norm"]] for entry in history if "loss" in entry])


def _launch_two_processes(workdir: Path, name: str, timeout: int = 300, **extra) -> np.ndarray:
    recipe = _recipe(workdir, name, per_device_train_batch_size=2, **extra)
    done = accelerate_launch(["-m", "spectrum_tune.cli", "train", "--config", str(recipe)], timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return _trajectory(workdir, name)


@pytest.fixture(scope="module")
def two_processes(workdir: Path) -> np.ndarray:
    return _launch_two_processes(workdir, "two-processes")


def test_two_processes_match_one_process_with_the_same_global_batch(workdir, two_processes):
    assert main(["train", "--config", str(_recipe(workdir, "one", per_device_train_batch_size=4))]) == 0
    one = _trajectory(workdir, "one")
    assert two_processes.shape == one.shape == (4, 2)
    np.testing.assert_allclose(two_processes, one, rtol=RTOL)
    assert not np.allclose(one[0], one[1])  # the steps see different groups: the check means something


def test_two_processes_match_gradient_accumulation(workdir, two_processes):
    recipe = _recipe(workdir, "accumulated", per_device_train_batch_size=2, gradient_accumulation_steps=2)
    assert main(["train", "--config", str(recipe)]) == 0
    np.testing.assert_allclose(two_processes, _trajectory(workdir, "accumulated"), rtol=RTOL)


def test_per_rank_normalisation_would_be_caught(workdir, two_processes):
    """Without averaging the denominators across ranks each rank normalises by its own groups
    (TRL's documented approximation); on this data that must move the loss beyond RTOL,
    otherwise the tests above could not see a normalisation bug."""
    per_rank = _launch_two_processes(workdir, "per-rank", average_tokens_across_devices=False)
    assert per_rank.shape == two_processes.shape
    assert np.abs(per_rank[:, 0] / two_processes[:, 0] - 1).max() > 100 * RTOL


# Uneven ranks, in one launch (each costs ~45 s here). With spectrum_chunk_size=2 and GEM on
# GEM_ROWS the ranks need different numbers of model calls on both paths: at step 1 rank 0 has 3
# multi-reference sequences (2 chunks) and 1 GEM row, rank 1 has 5 sequences (3 chunks) and no GEM
# row; at step 2 rank 0 has only GEM rows (so it pads the other rank's prompt encode too) and
# rank 1 6 sequences. Before every rank padded to the same calls (with DDP broadcasting buffers on
# each forward, and the GEM metrics gathered only where there were GEM rows) this run hung until
# the timeout; the same launch without GEM (`spectrum_chunk_size: 2` on ROWS) also hung before and
# matches one process now.
UNEVEN_TIMEOUT = 150  # s; the run takes well under a minute


def test_ddp_does_not_broadcast_buffers_by_default():
    from spectrum_tune import SpectrumConfig

    assert SpectrumConfig(output_dir="unused").ddp_broadcast_buffers is False


def test_uneven_chunks_and_gem_rows_on_one_rank_finish_and_match_one_process(workdir):
    extra = {
        "dataset_name": str(workdir / "gem.jsonl"),
        "spectrum_loss_type": "gem",
        "spectrum_chunk_size": 2,
        "max_steps": 2,
    }
    two = _launch_two_processes(workdir, "uneven", timeout=UNEVEN_TIMEOUT, **extra)
    recipe = _recipe(workdir, "uneven-one", per_device_train_batch_size=4, **extra)
    assert main(["train", "--config", str(recipe)]) == 0
    one = _trajectory(workdir, "uneven-one")
    assert two.shape == one.shape == (2, 2)
    np.testing.assert_allclose(two, one, rtol=RTOL)
