"""Fixtures the evaluation tests share: the random toy model and its tokenizer."""

import pytest

from ..toy import toy_model, toy_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    return toy_model(tokenizer).eval()
