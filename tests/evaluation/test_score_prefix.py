"""Score mode with prefix sharing (the default) gives the log-probs of full-sequence scoring."""

from __future__ import annotations

import numpy as np
import pytest

from spectrum_tune.evaluation import score
from spectrum_tune.evaluation.score import group_logprobs, score_task, tokenize_for_scoring
from spectrum_tune.evaluation.tasks import Item, Task

from ..toy import toy_model, toy_tokenizer

ITEMS = [
    ([{"role": "user", "content": "Pick a number between 1 and 10."}], ["1", "10", "2", "red", "7 8 9"]),
    ("Name a color.", ["red", "green", "blue", "yellow"]),
    ([{"role": "user", "content": "Name a color."}], ["blue"]),
    ("Pick a number between 1 and 3 and name a color and a number between 4 and 5.", ["1 red 4", "3"]),
]


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


@pytest.fixture(scope="module")
def model(tokenizer):
    return toy_model(tokenizer, seed=2).eval()


def _groups(tokenizer, published_eot: bool) -> list[dict]:
    items = [Item("t", prompt=p, references=r, weights=[1 / len(r)] * len(r)) for p, r in ITEMS]
    return [tokenize_for_scoring(item, tokenizer, published_eot) for item in items]


@pytest.mark.parametrize("published_eot", [False, True])
@pytest.mark.parametrize("batch_size", [64, 3])
def test_prefix_shared_logprobs_equal_full_sequences(
    model, tokenizer, monkeypatch, published_eot: bool, batch_size: int
) -> None:
    groups = _groups(tokenizer, published_eot)
    # prompts of different lengths share a batch (left-padded prefixes); batch_size 3 also splits
    # groups into pieces whose prompt is encoded once per piece
    assert len({len(g["prompt_ids"]) for g in groups}) == len(groups)
    calls = []
    encode = score.encode_prompts
    monkeypatch.setattr(score, "encode_prompts", lambda *a: calls.append(1) or encode(*a))
    shared = group_logprobs(model, groups, tokenizer.pad_token_id, batch_size, prefix_sharing=True)
    assert calls, "the prefix-shared path was not taken"
    calls.clear()
    naive = group_logprobs(model, groups, tokenizer.pad_token_id, batch_size, prefix_sharing=False)
    assert not calls
    for a, b in zip(shared, naive, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)
        assert np.all(a < 0)


def test_published_eot_changes_the_shared_scores_like_the_naive_ones(model, tokenizer):
    full, published = (
        np.concatenate(group_logprobs(model, _groups(tokenizer, eot), tokenizer.pad_token_id))
        for eot in (False, True)
    )
    assert np.all(published > full + 1e-4)  # the end-of-turn token's log-prob is no longer counted


def test_one_token_prompt_falls_back_to_full_sequences(model, tokenizer):
    group = {
        "prompt_ids": [5],
        "completion_ids": [[6, 7], [8]],
        "completion_mask": [[1, 1], [1]],
        "weights": [0.5, 0.5],
    }
    (shared,) = group_logprobs(model, [group], tokenizer.pad_token_id, prefix_sharing=True)
    (naive,) = group_logprobs(model, [group], tokenizer.pad_token_id, prefix_sharing=False)
    np.testing.assert_allclose(shared, naive, atol=1e-6)


def test_score_task_and_cli_flag(model, tokenizer, monkeypatch, tmp_path):
    item = Item("t", prompt="Name a color.", references=["red", "blue"], weights=[0.5, 0.5])
    task = Task("t", "s", "heldout", "open", None, [item])
    on, off = (score_task(model, tokenizer, task, prefix_sharing=on)[0]["logprobs"] for on in (True, False))
    np.testing.assert_allclose(on, off, atol=1e-5)

    from spectrum_tune.cli import eval as eval_command
    from spectrum_tune.evaluation import runner

    seen = []
    monkeypatch.setattr(
        runner,
        "run_eval",
        lambda options: seen.append(options) or {"tasks": {}, "wall_seconds": {"total": 0.0}},
    )
    for extra, expected in (([], True), (["--no_prefix_sharing"], False)):
        assert eval_command.main(["--model", "m", "--tasks", "spread", "--out", str(tmp_path), *extra]) == 0
        assert seen.pop().prefix_sharing is expected
