"""Published (tsor13/spectrum) metrics pinned to hand-computed values from the reference formulas."""

import math

import pytest

from spectrum_tune.evaluation.published import (
    distributional_metrics,
    diverse_valid_metrics,
    ece_stats,
    incontext_metrics,
    reference_int_valid,
)

ISSUE_SAMPLES = ["7", "07", "+7", "7.", "100", "101", "42", "42"]


def test_reference_int_check_on_the_issue_list():
    valid = [reference_int_valid(s, 1, 100) for s in ISSUE_SAMPLES]
    # int() accepts "+7"; a leading zero, a trailing dot and 101 are rejected
    assert valid == [True, False, True, False, True, False, True, True]
    assert not reference_int_valid(" 7", 1, 100) and not reference_int_valid("0", 1, 100)


def test_diverse_valid_metrics_by_hand():
    valid = [reference_int_valid(s, 1, 100) for s in ISSUE_SAMPLES]
    m = diverse_valid_metrics(ISSUE_SAMPLES, valid)
    assert m["percent_valid"] == 5 / 8  # the reference's 0.625
    assert m["unique_valid_count"] == 4  # "7", "+7", "100", "42"
    assert m["unique_gens_pct"] == 4 / 5
    assert m["usable_unique_pct"] == 4 / 8
    assert m["raw_unique_pct"] == 7 / 8
    assert m["pairwise_collision"] == 1 / 10  # one identical pair ("42", "42") of C(5, 2)
    assert m["pairwise_uniqueness"] == 9 / 10
    assert m["pairwise_collision_sem"] == pytest.approx(math.sqrt(0.1 * 0.9 / 10), abs=1e-15)
    assert "coverage_pct" not in m


def test_exact_match_and_coverage_on_the_valid_list_as_given():
    references = ["Monday", "MONDAY", "monday", "Tuesday"]  # case variants listed on purpose
    generations = [g.strip() for g in ["Monday", "monday", "Monday.", "Tuesday", " Tuesday "]]
    valid = [g in references for g in generations]
    m = diverse_valid_metrics(generations, valid, valid_list_size=len(references))
    assert m["percent_valid"] == 4 / 5
    assert m["unique_valid_count"] == 3
    assert m["coverage_pct"] == 3 / 4  # not deduplicated by case


@pytest.mark.parametrize("valid", [[False, False], [True, False]])
def test_edge_values_below_two_valid(valid):
    m = diverse_valid_metrics(["a", "b"], valid)
    assert (m["pairwise_collision"], m["pairwise_uniqueness"], m["pairwise_collision_sem"]) == (0.0, 1.0, 0.0)
    assert m["unique_gens_pct"] == (1.0 if any(valid) else 0.0)


def test_distributional_metrics_by_hand():
    target, logprobs = [0.5, 0.5], [math.log(0.25), math.log(0.75)]
    m = distributional_metrics(target, logprobs, eps=0.0)
    assert m["kl_divergence"] == pytest.approx(0.5 * math.log(2) + 0.5 * math.log(2 / 3), abs=1e-14)
    assert m["reverse_kl"] == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), abs=1e-14)
    js = 0.5 * (0.5 * math.log(0.5 / 0.375) + 0.5 * math.log(0.5 / 0.625)) + 0.5 * (
        0.25 * math.log(0.25 / 0.375) + 0.75 * math.log(0.75 / 0.625)
    )
    assert m["js_divergence"] == pytest.approx(js, abs=1e-14)
    assert m["cross_entropy"] == pytest.approx(-(0.5 * math.log(0.25) + 0.5 * math.log(0.75)), abs=1e-14)
    assert m["mode_match"] == 0.0  # target tie -> index 0; model mode is index 1
    smoothed = distributional_metrics(target, logprobs)  # eps = 1e-6 barely moves these
    q = [(0.25 + 1e-6) / (1 + 2e-6), (0.75 + 1e-6) / (1 + 2e-6)]
    assert smoothed["kl_divergence"] == pytest.approx(
        0.5 * math.log(0.5 / q[0]) + 0.5 * math.log(0.5 / q[1]), abs=1e-14
    )
    assert distributional_metrics([0.2, 0.8], [-3.0, -1.0])["mode_match"] == 1.0


def test_ece_by_hand():
    # pooled above 1%: ln .9, ln .6 (correct), ln .3 (incorrect); ln .005 is dropped -> 3 bins, one value each
    ece = ece_stats([math.log(0.9), math.log(0.6)], [math.log(0.3), math.log(0.005)])
    assert ece == pytest.approx((abs(0.3 - 0) + abs(0.6 - 1) + abs(0.9 - 1)) / 3, abs=1e-12)
    assert math.isnan(ece_stats([math.log(0.001)], []))


def test_incontext_aggregates():
    rows = [
        {
            "example_ind": j,
            "loss": loss,
            "first_acc": fa,
            "acc": acc,
            "all_acc": aa,
            "correct_logprobs": [math.log(0.9)],
            "incorrect_logprobs": [],
        }
        for j, (loss, fa, acc, aa) in enumerate(
            [(4, 0, 0.5, 0), (3, 1, 1.0, 1), (2, 1, 0.5, 0), (1, 1, 1.0, 1)]
        )
    ]
    m = incontext_metrics(rows)
    assert m["loss"] == 2.5 and m["loss_geq_1"] == 2.0
    assert m["loss_k"] == 2.0  # position max(j) - 1 = 2, the reference's "k"
    assert m["first_acc"] == 0.75 and m["acc_geq_1"] == pytest.approx(2.5 / 3)
    assert m["all_acc_k"] == 0.0


def test_incontext_positions_score_each_example_on_its_own_prefix():
    """Each position's loss is the NLL of that example after the ones before it (scored another way)."""
    from spectrum_tune.evaluation.score import group_logprobs
    from spectrum_tune.evaluation.steer import heldout_group, published_positions
    from spectrum_tune.evaluation.tasks import Item
    from spectrum_tune.training.data import incontext_messages

    from ..toy import toy_model, toy_tokenizer

    tokenizer = toy_tokenizer()
    model = toy_model(tokenizer).eval()
    item = Item("x", description="Colors.", examples=["red", "blue", "red"], heldout=["red"], k=[0])
    rows = published_positions(model, tokenizer, item, batch_size=2)  # two batches, padded
    assert [r["example_ind"] for r in rows] == [0, 1, 2]
    for j, row in enumerate(rows):
        group = heldout_group(incontext_messages(item.examples[: j + 1], item.description), tokenizer)
        (logps,) = group_logprobs(model, [group], tokenizer.pad_token_id)
        assert row["loss"] == pytest.approx(-logps[0], abs=1e-4)
        assert row["n_tokens"] == len(row["correct_logprobs"]) == len(group["completion_ids"][0])
        assert 0 <= row["all_acc"] <= row["acc"] <= 1
        assert all(v > math.log(0.01) for v in row["incorrect_logprobs"])
