"""Shared pytest fixtures."""

from pathlib import Path

import pytest

from spectrum_tune.world import tiny_model_path


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The tiny world model, shipped with the package (``spectrum_tune/world/shipped/tiny``): no
    build, the same weights on every machine (tests/world/test_shipped.py pins them)."""
    return tiny_model_path()


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
