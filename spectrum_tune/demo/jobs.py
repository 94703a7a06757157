"""The jobs every demo runs in its worker processes: train an arm, evaluate a model, run a batch.

The tiny-world demo (:mod:`.run`), the RL stage (:mod:`.rl`) and the real-model runs (:mod:`.real`)
share them; they are module-level functions so that spawned workers can unpickle them.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

__all__ = ["evaluate_arm", "init_worker", "run_jobs", "train_arm"]


def init_worker() -> None:
    """One torch thread per worker process."""
    import torch

    # Small models gain nothing from a second thread, and two processes of two threads each on
    # two cores spin-wait against each other (OpenMP): one thread per process is much faster.
    torch.set_num_threads(1)


def train_arm(recipe: str, output_dir: str, seed: int, steps: int | None,
               extra: list[str] | None = None) -> dict[str, Any]:
    """Train one arm from its recipe into ``output_dir``; the summary's step count, time and losses."""
    from ..training.recipe import parse_train_args
    from ..training.train import run_training

    argv = ["--config", recipe, "--output_dir", output_dir, "--seed", str(seed),
            "--overwrite_output_dir", "true", "--disable_tqdm", "true"]
    if steps is not None:
        argv += ["--max_steps", str(steps)]
    summary = run_training(*parse_train_args(argv + list(extra or [])))
    keys = ("global_steps", "wall_seconds", "first_logged_loss", "last_logged_loss")
    return {key: summary[key] for key in keys}


def evaluate_arm(model: str, adapter: str | None, out: str, tasks: list[str], seed: int,
              samples: int | None, gguf_file: str | None = None, mode: str = "both",
              split: str = "heldout") -> str:
    """Evaluate ``model`` (with ``adapter``) on ``tasks`` into ``out``; returns ``out``."""
    from ..evaluation.runner import EvalOptions, run_eval

    run_eval(EvalOptions(model=model, adapter=adapter, gguf_file=gguf_file, tasks=tasks, out=Path(out),
                         mode=mode, seed=seed, samples=samples, split=split, progress=False))
    return out


def run_jobs(executor: ProcessPoolExecutor, jobs: list[tuple], label: str, progress: bool) -> list[Any]:
    """Submit ``(function, *args)`` jobs; their results in order, with a progress bar."""
    from tqdm.auto import tqdm

    futures = [executor.submit(*job) for job in jobs]
    results = []
    for future in tqdm(futures, desc=label, disable=not progress):
        results.append(future.result())
    return results
