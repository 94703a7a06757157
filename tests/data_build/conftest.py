"""Fixtures the data-build tests share: two random toy teachers saved as user model directories."""

import json

import pytest

from ..toy import save_toy


@pytest.fixture(scope="session")
def teacher_dirs(tmp_path_factory):
    """Two different random toy models (seeds 0 and 1), as paths a user would pass."""
    root = tmp_path_factory.mktemp("teachers")
    return [str(save_toy(root / f"toy{seed}", seed=seed)) for seed in (0, 1)]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path
