"""Runs of the real CLI that tests compare across process counts: one deterministic recipe, one
free port, one ``accelerate launch`` command.

Deterministic: plain SGD at a constant learning rate (Adam divides near-zero gradient entries by
their own magnitude, so float noise could flip an update's sign), sequential sampling (rank i gets
the i-th per-device batch of one fixed order), full fine-tuning of a random toy model (LoRA's
zero-initialised B would make half the gradients exactly zero and a comparison weaker), float32.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
CPU_2PROC = ROOT / "recipes" / "accelerate" / "cpu-2proc.yaml"

DETERMINISTIC: dict[str, Any] = {
    "learning_rate": 0.5,
    "optim": "sgd",
    "lr_scheduler_type": "constant",
    "train_sampling_strategy": "sequential",
    "seed": 0,
    "use_cpu": True,
    "bf16": False,
    "use_peft": False,
    "gradient_checkpointing": False,
    "logging_steps": 1,
    "report_to": "none",
}


def free_port() -> int:
    """A free local port: concurrent test runs must not share torchrun's default 29500."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def accelerate_launch(
    target: list[str],
    config: Path = CPU_2PROC,
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cpu_mode: bool = True,
) -> subprocess.CompletedProcess:
    """``accelerate launch --config_file CONFIG TARGET...`` from the repository root.

    ``target`` is what follows the launcher's options (``["-m", "spectrum_tune.cli", "train", ...]``
    or a script and its arguments). ``cpu_mode`` sets ``ACCELERATE_USE_CPU`` (torchrun does not
    forward a config's ``use_cpu``, see cpu-2proc.yaml); DeepSpeed runs on its own CPU accelerator
    and needs it unset. ``OMP_NUM_THREADS=1``: two processes on two shared cores must not
    spin-wait on each other.
    """
    environment = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    if cpu_mode:
        environment["ACCELERATE_USE_CPU"] = "true"
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(config),
        "--main_process_port",
        str(free_port()),
        *target,
    ]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=timeout)
