"""Fixtures the CLI tests share."""

import pytest

from ..toy import save_toy


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory):
    """The random toy model saved to a directory, as a user's model path."""
    return str(save_toy(tmp_path_factory.mktemp("toy")))
