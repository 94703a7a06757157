"""Published-compatible metrics: tsor13/spectrum's conventions, names and edge-case values.

``--published`` (or ``published: true`` in a task file) adds these beside our own metrics, so a
number can be put next to a Spectrum Tuning (Sorensen et al., 2025) table. Our own metrics
normalise answers (case, punctuation) and deduplicate; the reference does not, and the
functions here follow the reference exactly:

* **Sample mode** (the reference's diverse-valid eval). A generation is the decoded text cut at
  the first stop string, then stripped. It is valid when it is *exactly* one of the listed valid
  strings (the list as given: ``weekdays_full`` lists case variants on purpose), or when the
  validator accepts it (``int_range``: the reference's integer check, see
  :func:`reference_int_valid`). Metrics (``sample`` namespace): ``percent_valid``,
  ``unique_gens_pct`` (unique valid / valid, 0.0 with no valid), ``usable_unique_pct`` (unique
  valid / all), ``unique_valid_count``, ``raw_unique_pct`` (unique / all, validity ignored),
  ``pairwise_collision``, ``pairwise_uniqueness`` (1 - collision; 0.0 / 1.0 below two valid),
  ``pairwise_collision_sem`` (``sqrt(p (1 - p) / pairs)``, as published), ``coverage_pct``
  (unique valid / length of the valid list, listed items only).
* **Score mode** (the reference's distributional eval). Probabilities ``exp(s_k)`` of the listed
  outputs *without* the end-of-turn token, renormalised, then ``eps = 1e-6`` added to both sides
  and renormalised: ``kl_divergence`` (KL(target || model)), ``reverse_kl``, ``js_divergence``,
  ``cross_entropy`` (H(target, model)), ``mode_match`` (argmax agreement, first index on ties).
* **In-context** (the reference's ICL eval, ``steer`` namespace): one sequence holds the
  description (if any) and the item's examples; every example's output (content and
  end-of-turn token) is scored at its own position. Per position: ``loss`` (summed token NLL),
  ``first_acc`` (the first token is the argmax), ``acc`` (share of argmax tokens), ``all_acc``
  (every token argmax). Reported: their means over all positions, over positions >= 1
  (``*_geq_1``) and at the second-to-last position (``*_k``, the reference's ``max - 1``), plus
  ``ece`` (:func:`ece_stats`).

``scripts/recompute_published.py`` recomputes all of these from a results.json written with
``--keep_generations all`` by an independent implementation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

__all__ = [
    "PUBLISHED_EPS",
    "distributional_metrics",
    "diverse_valid_metrics",
    "ece_stats",
    "incontext_metrics",
    "published_text",
    "reference_int_valid",
]

PUBLISHED_EPS = 1e-6
CALIBRATION_MIN_PROB = 0.01
"""The reference keeps only token probabilities above 1% for calibration."""
ECE_BINS = 10


def published_text(generation: str) -> str:
    """A generation as the reference compares it: stripped (it is already cut at the stop strings)."""
    return generation.strip()


def reference_int_valid(text: str, low: int, high: int) -> bool:
    """The reference's ``rng_1_100`` check: no surrounding space, no leading zero, ``int()`` in range.

    Python's ``int`` also accepts a sign ("+7") and digit separators ("1_0"); the reference does,
    so this does too (its validity of ``["7", "07", "+7", "7.", "100", "101", "42", "42"]`` on
    [1, 100] is 0.625: "7", "+7", "100", "42", "42").
    """
    if text != text.strip() or (text.startswith("0") and len(text) > 1):
        return False
    try:
        number = int(text)
    except ValueError:
        return False
    return low <= number <= high


def diverse_valid_metrics(
    generations: Sequence[str], valid: Sequence[bool], valid_list_size: int | None = None
) -> dict[str, float]:
    """The reference's diverse-valid metrics of one prompt's generations (already stripped).

    ``valid`` is the validity of each generation; ``valid_list_size`` is the length of the valid
    list as given (``coverage_pct`` is reported only when it is known). No generations gives
    ``nan`` validity (the reference divides by zero there).
    """
    if len(valid) != len(generations):
        raise ValueError(f"valid has {len(valid)} entries for {len(generations)} generations")
    n = len(generations)
    valid_texts = [text for text, ok in zip(generations, valid, strict=True) if ok]
    unique_valid = len(set(valid_texts))
    n_valid = len(valid_texts)
    if n_valid <= 1:
        collision, sem = 0.0, 0.0
    else:
        pairs = n_valid * (n_valid - 1) // 2
        counts: dict[str, int] = {}
        for text in valid_texts:
            counts[text] = counts.get(text, 0) + 1
        collision = sum(c * (c - 1) // 2 for c in counts.values()) / pairs
        sem = math.sqrt(collision * (1 - collision)) / math.sqrt(pairs)
    metrics = {
        "percent_valid": n_valid / n if n else math.nan,
        "unique_gens_pct": unique_valid / n_valid if n_valid else 0.0,
        "usable_unique_pct": unique_valid / n if n else 0.0,
        "unique_valid_count": float(unique_valid),
        "raw_unique_pct": len(set(generations)) / n if n else 0.0,
        "pairwise_collision": collision,
        "pairwise_uniqueness": 1.0 - collision,
        "pairwise_collision_sem": sem,
    }
    if valid_list_size is not None:
        metrics["coverage_pct"] = unique_valid / valid_list_size
    return metrics


def distributional_metrics(
    target_probs: Sequence[float], logprobs: Sequence[float], eps: float = PUBLISHED_EPS
) -> dict[str, float]:
    """The reference's score-mode divergences from the listed outputs' log-probs.

    The model side is ``exp(s)`` renormalised (computed stably as a softmax); both sides then get
    ``eps`` added and are renormalised, as the reference's ``calculate_metric`` does.
    """
    s = np.asarray(logprobs, dtype=float)
    target = np.asarray(target_probs, dtype=float)
    if s.shape != target.shape or s.ndim != 1 or s.size == 0:
        raise ValueError(f"target {target.shape} and logprobs {s.shape} must be equal-length 1-D")
    model = np.exp(s - s.max())
    model = model / model.sum()
    p = (target + eps) / np.sum(target + eps)
    q = (model + eps) / np.sum(model + eps)
    m = 0.5 * (p + q)
    return {
        "kl_divergence": float(np.sum(p * np.log(p / q))),
        "reverse_kl": float(np.sum(q * np.log(q / p))),
        "js_divergence": float(0.5 * (np.sum(p * np.log(p / m)) + np.sum(q * np.log(q / m)))),
        "cross_entropy": float(-np.sum(p * np.log(q))),
        "mode_match": float(np.argmax(p) == np.argmax(q)),
    }


def ece_stats(
    correct_logprobs: Sequence[float],
    incorrect_logprobs: Sequence[float],
    thresh: float = CALIBRATION_MIN_PROB,
    n_bins: int = ECE_BINS,
) -> float:
    """The reference's token-level expected calibration error.

    Pool the log-probs of the correct tokens and of the incorrect vocabulary entries, keep those
    above ``log(thresh)``, cut them into ``min(n_bins, count)`` equal-count bins by percentile,
    and average ``|mean confidence - share of correct|`` over the non-empty bins. A bin includes
    both of its edges (the reference's ``>= low & <= high``), so an edge value counts twice.
    ``nan`` when nothing passes the threshold.
    """
    log_thresh = math.log(thresh)
    correct = np.asarray(correct_logprobs, dtype=float)
    incorrect = np.asarray(incorrect_logprobs, dtype=float)
    pooled = np.concatenate([correct[correct > log_thresh], incorrect[incorrect > log_thresh]])
    if pooled.size == 0:
        return math.nan
    bins = min(n_bins, pooled.size)
    cutoffs = np.percentile(pooled, np.linspace(0, 100, bins + 1))
    gaps = []
    for low, high in pairwise(cutoffs):
        inside = (pooled >= low) & (pooled <= high)
        if inside.sum() > 0:
            # the reference counts correct tokens over *all* correct log-probs, thresholded or not
            n_correct = ((correct >= low) & (correct <= high)).sum()
            gaps.append(abs(np.mean(np.exp(pooled[inside])) - n_correct / inside.sum()))
    return float(np.mean(gaps))


def incontext_metrics(positions: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Aggregate per-position records of one in-context sequence into the reference's metrics.

    Each record: ``{"example_ind": j, "loss", "first_acc", "acc", "all_acc", "correct_logprobs":
    [...], "incorrect_logprobs": [...]}`` (the incorrect log-probs already cut at 1%).
    ``*_geq_1`` averages positions ``j >= 1``; ``*_k`` the position ``max(j) - 1`` among those.
    """
    names = ("loss", "first_acc", "acc", "all_acc")
    metrics: dict[str, float] = {}

    def add(rows: list[dict[str, Any]], suffix: str) -> None:
        for name in names:
            metrics[name + suffix] = float(np.mean([r[name] for r in rows])) if rows else math.nan
        correct = [v for r in rows for v in r["correct_logprobs"]]
        incorrect = [v for r in rows for v in r["incorrect_logprobs"]]
        metrics["ece" + suffix] = ece_stats(correct, incorrect) if rows else math.nan

    rows = list(positions)
    add(rows, "")
    geq_1 = [r for r in rows if r["example_ind"] >= 1]
    add(geq_1, "_geq_1")
    last = max((r["example_ind"] for r in geq_1), default=None)
    add([r for r in geq_1 if last is not None and r["example_ind"] == last - 1], "_k")
    return metrics
