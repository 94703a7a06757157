"""Shared pytest fixtures."""

import os
from pathlib import Path

import pytest

from spectrum_tune.world import tiny_model_path


@pytest.fixture(scope="session")
def tiny_model_dir(torch_single_thread) -> Path:
    """The tiny world model (built once into the cache, ~3 minutes, then reused).

    Its pretraining is the one workload here large enough to use every core, so the build runs
    with torch's default thread count and the suite goes back to one thread afterwards.
    """
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    try:
        return tiny_model_path()
    finally:
        torch.set_num_threads(1)


@pytest.fixture(autouse=True, scope="session")
def torch_single_thread():
    """Run the suite's tiny forwards on one thread: models this small gain nothing from a second
    thread, and when the other core is busy OpenMP's spin-waits make two threads several times
    slower (measured here: 0.14 s vs 0.92 s for 100 tiny-model samples on a loaded machine).
    The tiny model's one-off pretraining picks its own thread count."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def one_thread():
    """One torch thread for the test (identical-draw and timing-sensitive tests), restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
