"""Collision intervals for skewed distributions, Vendi's intdiv, and task means that count their items."""

import math

import numpy as np
import pytest

from spectrum_tune.evaluation.metrics import collision, embedding_diversity, intdiv
from spectrum_tune.evaluation.runner import mean_metrics, metric_counts


def test_collision_se_is_the_u_statistic_one_by_hand():
    samples = ["a"] * 3 + ["b"]  # n = 4: C = 3 of 6 pairs
    p, se = collision(samples)
    s2 = (3 * 2) / (4 * 3)
    s3 = (3 * 2 * 1) / (4 * 3 * 2)
    var = (4 * 2 * (s3 - s2**2) + 2 * s2 * (1 - s2)) / (4 * 3)
    assert p == 0.5 and se == pytest.approx(math.sqrt(var), abs=1e-15)


def test_collision_interval_covers_on_a_skewed_distribution():
    rng = np.random.default_rng(0)
    true, hits, reps = 0.9**2 + 0.1**2, 0, 1000
    for _ in range(reps):
        draws = rng.choice(["x", "y"], size=100, p=[0.9, 0.1]).tolist()
        p, se = collision(draws, normalize=False)
        hits += abs(p - true) <= 1.96 * se
    # the old sqrt(p(1-p)/pairs) was ~9x too small here and covered ~20%
    assert 0.90 <= hits / reps <= 0.98


def test_intdiv_is_vendis_and_embedding_diversity_excludes_the_diagonal():
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    # K = [[1,0,1],[0,1,0],[1,0,1]]: sum 5 of 9 entries
    assert intdiv(x) == pytest.approx(1 - 5 / 9)
    assert embedding_diversity(x) == pytest.approx(intdiv(x) * 3 / 2)  # n / (n - 1)


def test_task_means_report_how_many_items_they_averaged():
    records = [{"validity": 1.0, "js": math.nan}, {"validity": 0.0, "js": 0.2}, None]
    assert mean_metrics(records) == {"validity": 0.5, "js": 0.2}
    assert metric_counts(records) == {"validity": 2, "js": 1}
