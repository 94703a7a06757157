"""Commands with worker processes leave none behind on SIGTERM / SIGINT.

Before, SIGTERM to ``spectrum-tune demo`` ended the parent and left its two spawned workers
training as orphans (checked on the main branch: both tests below fail there, the workers still
alive after the parent exited). Each test sends the signal while the workers train, then checks
that the command exits with one line and status 128 + signal, and that no process it started is
left; leftovers are killed by the test so a failure does not leave load on the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from ..toy import save_toy
from ..training.test_distributed import ROWS, _write_rows

TIMEOUT = 120  # s


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, grandchildren, ...), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":  # a zombie is dead, only not yet reaped
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _signal_while_working(command: list[str], ready, signum: int) -> tuple[int, str, set, set]:
    """Start ``command``, wait until ``ready(workers)`` (the descendants seen), send ``signum``; the
    returncode, stderr, the descendants seen and those still alive after the command ended."""
    # a file, not a pipe: orphaned workers would hold a pipe open and hang the read
    log = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen(
        command, env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL, stderr=log, text=True
    )
    seen: set[int] = set()
    try:
        deadline = time.monotonic() + TIMEOUT
        while True:
            if process.poll() is not None:
                log.seek(0)
                pytest.fail(f"ended before the signal: {log.read()[-3000:]}")
            assert time.monotonic() < deadline, "the workers never started"
            seen |= _descendants(process.pid)
            if ready(seen):
                break
            time.sleep(0.2)
        process.send_signal(signum)
        process.wait(timeout=TIMEOUT)
        time.sleep(1.0)  # multiprocessing's resource tracker ends when its pipe closes
        log.seek(0)
        return process.returncode, log.read(), seen, _alive(seen)
    finally:
        log.close()
        if process.poll() is None:
            process.kill()
            process.wait()
        for pid in _alive(seen):  # never leave a failed test's orphans running
            os.kill(pid, signal.SIGKILL)


# The demos' pool and job, and the CLI's handling of Interrupted (one line, status 128 + signal).
POOL_SCRIPT = """
import sys
from spectrum_tune.demo.jobs import run_jobs, train_arm, worker_pool
from spectrum_tune.errors import Interrupted

recipe, out = sys.argv[1:3]
try:
    with worker_pool(2) as executor:
        run_jobs(executor, [(train_arm, recipe, f"{out}/arm-{i}", i, None) for i in range(2)], "arms", False)
except Interrupted as error:
    print(error, file=sys.stderr)
    sys.exit(error.exit_code)
"""


@pytest.mark.parametrize("signum", [signal.SIGINT])  # the real demo below takes SIGTERM
def test_the_demo_worker_pool_ends_its_training_workers(tmp_path, signum):
    """The demos' pool (demo/jobs.worker_pool) running the demos' own train_arm job on a toy model,
    signalled once both workers are training (their first checkpoint is written)."""
    save_toy(tmp_path / "toy")
    _write_rows(tmp_path / "train.jsonl", ROWS)
    recipe = {
        "model_name_or_path": str(tmp_path / "toy"),
        "dataset_name": str(tmp_path / "train.jsonl"),
        "max_steps": 100000,
        "save_steps": 1,
        "save_total_limit": 1,
        "use_cpu": True,
        "bf16": False,
        "use_peft": False,
        "gradient_checkpointing": False,
        "report_to": "none",
        "logging_steps": 1000,
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    out = tmp_path / "arms"

    def training(workers: set[int]) -> bool:
        return all(any((out / f"arm-{i}").glob("checkpoint-*")) for i in range(2))

    command = [sys.executable, "-c", POOL_SCRIPT, str(tmp_path / "recipe.yaml"), str(out)]
    code, stderr, seen, left = _signal_while_working(command, training, signum)
    assert len(seen) >= 2 and not left, f"left running: {left}"
    assert code == 128 + signum, stderr[-3000:]
    name = signal.Signals(signum).name
    # one line, no traceback (multiprocessing's resource tracker may still warn that it cleaned up
    # the killed workers' tqdm locks)
    assert any(line.startswith(f"stopped by {name}: ended 2") for line in stderr.splitlines()), stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]


@pytest.mark.slow
def test_sigterm_to_the_demo_leaves_no_worker_running(tiny_model_dir, tmp_path):
    """The real ``spectrum-tune demo`` (tiny model, 2 workers, arms of 100000 steps), SIGTERM 5 s
    after both workers started."""
    started: dict[str, float] = {}

    def working(workers: set[int]) -> bool:
        if len(_alive(workers)) >= 3:  # the resource tracker and the two workers
            started.setdefault("at", time.monotonic())
        return "at" in started and time.monotonic() - started["at"] > 5

    command = [
        sys.executable,
        "-m",
        "spectrum_tune.cli",
        "demo",
        "--quick",
        "--steps",
        "100000",
        "--workers",
        "2",
        "--out",
        str(tmp_path / "demo"),
    ]
    code, stderr, seen, left = _signal_while_working(command, working, signal.SIGTERM)
    assert len(seen) >= 3 and not left, f"left running: {left}"
    assert code == 128 + signal.SIGTERM, stderr[-3000:]
    assert any(line.startswith("stopped by SIGTERM: ended") for line in stderr.splitlines()), stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
