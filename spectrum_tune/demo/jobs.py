"""The jobs every demo runs in its worker processes: train an arm, evaluate a model, run a batch.

The tiny-world demo (:mod:`.run`), the RL stage (:mod:`.rl`) and the real-model runs (:mod:`.real`)
share them; they are module-level functions so that spawned workers can unpickle them. They all run
in :func:`worker_pool`, whose workers never outlive the command (SIGTERM, Ctrl-C, or a killed parent).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from ..errors import Interrupted

__all__ = ["evaluate_arm", "init_worker", "run_jobs", "train_arm", "worker_pool"]

# How long a worker gets to end after SIGTERM before SIGKILL (it exits at once unless it is stuck).
WORKER_GRACE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def init_worker(parent_pid: int | None = None) -> None:
    """One torch thread per worker process; the worker dies with its parent and leaves Ctrl-C to it."""
    import torch

    # Small models gain nothing from a second thread, and two processes of two threads each on
    # two cores spin-wait against each other (OpenMP): one thread per process is much faster.
    torch.set_num_threads(1)
    # Ctrl-C reaches the whole process group: the parent decides, and ends the workers itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM (from the parent) ends a worker at once: a demo arm restarts from scratch, so a
    # training worker has no use for the trainer's stop-at-step-end checkpoint (which it would
    # take instead of the default action, and then stay in the pool waiting for work).
    signal.signal(signal.SIGTERM, _exit_now)
    if sys.platform.startswith("linux"):
        import ctypes

        # A parent killed outright (SIGKILL, OOM killer) cannot end its workers: the kernel does.
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)  # the parent died before prctl took effect


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(128 + signum)


def _end_workers(grace: float) -> int:
    """SIGTERM every live child process, SIGKILL those still alive after ``grace`` s; how many."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + grace
    for child in children:
        child.join(max(0.0, deadline - time.monotonic()))
        if child.is_alive():
            child.kill()
            child.join(5)
    return len(children)


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` spawned processes that ends with the command.

    On SIGTERM or SIGINT the parent ends its workers (SIGTERM, then SIGKILL after
    :data:`WORKER_GRACE_SECONDS`) and raises :class:`~spectrum_tune.errors.Interrupted`, so the
    command exits with one line and no process left running; a worker whose parent is killed
    outright is killed by the kernel (``PR_SET_PDEATHSIG``, Linux).
    """
    context = multiprocessing.get_context("spawn")
    executor = ProcessPoolExecutor(
        workers, mp_context=context, initializer=init_worker, initargs=(os.getpid(),)
    )
    previous: dict[int, Any] = {}

    def stop(signum: int, frame: Any) -> None:
        for other in previous:
            signal.signal(other, signal.SIG_IGN)  # a repeated signal must not cut the clean-up short
        ended = _end_workers(WORKER_GRACE_SECONDS)
        raise Interrupted(
            f"stopped by {signal.Signals(signum).name}: ended {ended} worker process(es), "
            "none is left running; rerun the command to start again",
            signum,
        )

    if threading.current_thread() is threading.main_thread():
        previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield executor
    finally:
        # after an interruption the workers are gone already: this only joins the pool's thread
        executor.shutdown(wait=True, cancel_futures=True)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def train_arm(
    recipe: str, output_dir: str, seed: int, steps: int | None, extra: list[str] | None = None
) -> dict[str, Any]:
    """Train one arm from its recipe into ``output_dir``; the summary's step count, time and losses."""
    from ..training.recipe import parse_train_args
    from ..training.train import run_training

    argv = [
        "--config",
        recipe,
        "--output_dir",
        output_dir,
        "--seed",
        str(seed),
        "--overwrite_output_dir",
        "true",
        "--disable_tqdm",
        "true",
    ]
    if steps is not None:
        argv += ["--max_steps", str(steps)]
    summary = run_training(*parse_train_args(argv + list(extra or [])))
    keys = ("global_steps", "wall_seconds", "first_logged_loss", "last_logged_loss")
    return {key: summary[key] for key in keys}


def evaluate_arm(
    model: str,
    adapter: str | None,
    out: str,
    tasks: list[str],
    seed: int,
    samples: int | None,
    gguf_file: str | None = None,
    mode: str = "both",
    split: str = "heldout",
) -> str:
    """Evaluate ``model`` (with ``adapter``) on ``tasks`` into ``out``; returns ``out``."""
    from ..evaluation.runner import EvalOptions, run_eval

    run_eval(
        EvalOptions(
            model=model,
            adapter=adapter,
            gguf_file=gguf_file,
            tasks=tasks,
            out=Path(out),
            mode=mode,
            seed=seed,
            samples=samples,
            split=split,
            progress=False,
        )
    )
    return out


def run_jobs(executor: ProcessPoolExecutor, jobs: list[tuple], label: str, progress: bool) -> list[Any]:
    """Submit ``(function, *args)`` jobs; their results in order, with a progress bar."""
    from tqdm.auto import tqdm

    futures = [executor.submit(*job) for job in jobs]
    results = []
    for future in tqdm(futures, desc=label, disable=not progress):
        results.append(future.result())
    return results
