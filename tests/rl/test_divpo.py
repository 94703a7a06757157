"""DivPO and ordinary pair building against hand-picked pairs."""

from __future__ import annotations

import pytest

from spectrum_tune.errors import SpectrumError
from spectrum_tune.rl.divpo import divpo_pairs, preference_pairs

CHAT = [{"role": "user", "content": "Name a number."}]
# validity 1, 1, 1, 1, 0, 0, 0; class sizes 1:3, 2:1, x:2, y:1 of G = 7, so diversity
# d = (7 - n) / 6: "1" 4/6, "2" 1, "x" 5/6, "y" 1
ROW = {"prompt": "Name a number.", "responses": ["1", "1", "1", "2", "x", "x", "y"], "references": ["1", "2"]}


def test_divpo_threshold_picks_most_and_least_diverse():
    (pair,) = divpo_pairs([ROW])
    assert (pair["chosen"], pair["rejected"]) == ("2", "x")  # rarest valid, most repeated invalid
    assert (pair["chosen_diversity"], pair["rejected_diversity"]) == pytest.approx((1.0, 5 / 6))
    assert (pair["chosen_score"], pair["rejected_score"]) == (1.0, 0.0)


def test_divpo_top_fraction_splits_by_rank():
    # floor(0.5 * 7) = 3 per pool: top = responses 0-2 (all "1", a tie -> the first), bottom = 4-6
    (pair,) = divpo_pairs([ROW], top_fraction=0.5)
    assert (pair["chosen"], pair["rejected"]) == ("1", "x")


def test_divpo_scores_column_and_conversational_prompt():
    row = {"prompt": CHAT, "responses": ["a", "b", "b", "c"], "scores": [0.9, 0.8, 0.8, 0.1]}
    (pair,) = divpo_pairs([row], threshold=0.5)
    # high pool a (d=1), b, b (d=2/3) -> a; low pool: c
    assert pair["chosen"] == [{"role": "assistant", "content": "a"}]
    assert pair["rejected"] == [{"role": "assistant", "content": "c"}]
    assert pair["prompt"] == CHAT


def test_divpo_skips_prompts_without_both_pools():
    all_valid = {"prompt": "p", "responses": ["1", "2"], "references": ["1", "2"]}
    assert divpo_pairs([all_valid]) == []


def test_ordinary_pairs_take_best_and_worst():
    (pair,) = preference_pairs([ROW])
    assert (pair["chosen"], pair["rejected"]) == ("1", "x")  # first of the best, first of the worst
    assert preference_pairs([{"prompt": "p", "responses": ["1", "2"], "scores": [1, 1]}]) == []


def test_bad_rows_are_one_line_errors():
    with pytest.raises(SpectrumError, match="responses"):
        divpo_pairs([{"prompt": "p"}])
    with pytest.raises(SpectrumError, match="scores"):
        divpo_pairs([{"prompt": "p", "responses": ["a"], "scores": [1, 2]}])
    with pytest.raises(SpectrumError, match="top_fraction"):
        divpo_pairs([ROW], top_fraction=0.8)
    with pytest.raises(SpectrumError, match="cannot score"):
        divpo_pairs([{"prompt": "p", "responses": ["a", "b"]}])  # no valid set, no scores


def test_a_group_level_quality_scores_the_pool_as_one_group():
    """popularity_reward needs its group: pool_scores passes the pool as one (num_generations =
    the pool size). Pool of 7: "1" x3 valid -> 0.8 + 0.2 * 3/7, "2" valid once -> 0.8 + 0.2/7."""
    from spectrum_tune.rl.divpo import pool_scores
    from spectrum_tune.rl.rewards import popularity_reward

    scores = pool_scores(ROW, ROW["responses"], popularity_reward(margin=0.2))
    assert scores[:4] == pytest.approx([0.8 + 0.6 / 7] * 3 + [0.8 + 0.2 / 7])
    assert scores[4:] == [0.0, 0.0, 0.0]
