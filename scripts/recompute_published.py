"""Recompute the published (tsor13/spectrum) metrics of a results.json from its kept generations.

An independent, deliberately plain re-implementation of the reference formulas (loops over pairs,
``np.where`` divergences as the reference writes them), sharing no code with
``spectrum_tune.evaluation.published``. Run it on a results.json written by
``spectrum-tune eval --published --keep_generations all``::

    python scripts/recompute_published.py runs/eval/results.json [--tol 1e-9]

It prints, per namespace, how many item metrics it recomputed and the largest absolute difference,
and exits 1 when a difference exceeds ``--tol`` (or nothing could be recomputed). Items whose
validity it cannot rebuild (regex / list-file validators) are counted as skipped. In-context
metrics are re-aggregated from the kept per-position records (loss, accuracies and token
log-probs of every example), the reference's means and ECE.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import numpy as np

SAMPLE_KEYS = (
    "percent_valid",
    "unique_gens_pct",
    "usable_unique_pct",
    "unique_valid_count",
    "raw_unique_pct",
    "pairwise_collision",
    "pairwise_uniqueness",
    "pairwise_collision_sem",
    "coverage_pct",
)
SCORE_KEYS = ("kl_divergence", "reverse_kl", "js_divergence", "cross_entropy", "mode_match")
STEER_KEYS = tuple(
    name + suffix
    for suffix in ("", "_geq_1", "_k")
    for name in ("loss", "first_acc", "acc", "all_acc", "ece")
)


def is_int_in_range(text, low, high):
    # the reference: no surrounding whitespace, no leading zero, int() parses, in range
    if text != text.strip():
        return False
    if text.startswith("0") and len(text) > 1:
        return False
    try:
        value = int(text)
    except ValueError:
        return False
    return low <= value <= high


def sample_reference(generations, references, validator):
    texts = [g.strip() for g in generations]
    # results.json keeps an int_range validator as its {min, max} spec; others cannot be rebuilt here
    ranged = isinstance(validator, dict) and {"min", "max"} <= set(validator)
    if validator is not None and not ranged:
        return None
    if not references and not ranged:
        return None
    listed = references or []
    validity = [
        t in listed or (ranged and is_int_in_range(t, validator["min"], validator["max"])) for t in texts
    ]
    valid_texts = [t for t, v in zip(texts, validity, strict=True) if v]
    unique_gens = set(valid_texts)
    out = {
        "percent_valid": sum(validity) / len(validity),
        "unique_gens_pct": len(unique_gens) / len(valid_texts) if valid_texts else 0.0,
        "usable_unique_pct": len(unique_gens) / len(texts) if texts else 0.0,
        "unique_valid_count": len(unique_gens),
        "raw_unique_pct": len(set(texts)) / len(texts) if texts else 0.0,
    }
    n_valid = len(valid_texts)
    if n_valid <= 1:
        collision, sem = 0.0, 0.0
    else:
        possible = n_valid * (n_valid - 1) // 2
        actual = 0
        for i in range(n_valid):
            for j in range(i + 1, n_valid):
                if valid_texts[i] == valid_texts[j]:
                    actual += 1
        collision = actual / possible
        sem = math.sqrt(collision * (1 - collision)) / math.sqrt(possible)
    out["pairwise_collision"] = collision
    out["pairwise_uniqueness"] = 1.0 - collision
    out["pairwise_collision_sem"] = sem
    if references:
        out["coverage_pct"] = len(unique_gens) / len(references)
    return out


def score_reference(target_probs, logprobs, eps=1e-6):
    probs = np.exp(np.array(logprobs, dtype=float))
    normalized = probs / np.sum(probs)
    p = np.array(target_probs, dtype=float) + eps
    q = normalized + eps
    p, q = p / np.sum(p), q / np.sum(q)
    m = (p + q) / 2
    return {
        "kl_divergence": np.sum(np.where(p > 0, p * np.log(p / q), 0.0)),
        "reverse_kl": np.sum(np.where(q > 0, q * np.log(q / p), 0.0)),
        "js_divergence": 0.5
        * (np.sum(np.where(p > 0, p * np.log(p / m), 0.0)) + np.sum(np.where(q > 0, q * np.log(q / m), 0.0))),
        "cross_entropy": -np.sum(np.where(p > 0, p * np.log(q), 0.0)),
        "mode_match": 1 * (np.argmax(p) == np.argmax(q)),
    }


def ece_reference(correct_logprobs, incorrect_logprobs, thresh=0.01, n_bins=10):
    correct_logprobs = np.array(correct_logprobs, dtype=float)
    incorrect_logprobs = np.array(incorrect_logprobs, dtype=float)
    log_thresh = np.log(thresh)
    all_logprobs = np.concatenate(
        [correct_logprobs[correct_logprobs > log_thresh], incorrect_logprobs[incorrect_logprobs > log_thresh]]
    )
    if len(all_logprobs) == 0:
        return None
    n_bins = min(n_bins, len(all_logprobs))
    bin_cutoffs = np.percentile(all_logprobs, np.linspace(0, 100, n_bins + 1))
    bin_means, bin_p_correct = [], []
    for bin_min, bin_max in itertools.pairwise(bin_cutoffs):
        bin_inds = (all_logprobs >= bin_min) & (all_logprobs <= bin_max)
        if bin_inds.sum() > 0:
            bin_means.append(np.mean(np.exp(all_logprobs[bin_inds])))
            n_correct = ((correct_logprobs >= bin_min) & (correct_logprobs <= bin_max)).sum()
            bin_p_correct.append(n_correct / bin_inds.sum())
    return np.abs(np.array(bin_means) - np.array(bin_p_correct)).mean()


def steer_reference(positions):
    """The reference's aggregation of per-position records (means over positions, ECE)."""
    out = {}
    geq_1 = [r for r in positions if r["example_ind"] >= 1]
    top = max((r["example_ind"] for r in geq_1), default=None)
    subsets = {
        "": positions,
        "_geq_1": geq_1,
        "_k": [r for r in geq_1 if r["example_ind"] == top - 1] if geq_1 else [],
    }
    for suffix, rows in subsets.items():
        if not rows:
            continue
        for name in ("loss", "first_acc", "acc", "all_acc"):
            out[name + suffix] = sum(r[name] for r in rows) / len(rows)
        ece = ece_reference(
            [v for r in rows for v in r["correct_logprobs"]],
            [v for r in rows for v in r["incorrect_logprobs"]],
        )
        if ece is not None:
            out["ece" + suffix] = ece
    return out


def compare(ours, theirs, keys, diffs):
    for key in keys:
        if key in theirs:
            if key not in ours or ours[key] is None:
                diffs.append((key, math.inf))
            else:
                diffs.append((key, abs(float(ours[key]) - float(theirs[key]))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--tol", type=float, default=1e-9)
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text(encoding="utf-8"))
    diffs = {"sample": [], "score": [], "steer": []}
    skipped = {"sample": 0, "score": 0, "steer": 0}
    for task in results["tasks"].values():
        for item in task.get("items", []):
            sample = item.get("sample")
            if sample and "percent_valid" in sample["metrics"]:
                if sample.get("n_generations") != len(sample["generations"]):
                    skipped["sample"] += 1  # not all generations kept
                else:
                    theirs = sample_reference(
                        sample["generations"], item.get("references"), item.get("validator")
                    )
                    if theirs is None:
                        skipped["sample"] += 1
                    else:
                        compare(sample["metrics"], theirs, SAMPLE_KEYS, diffs["sample"])
            score = item.get("score")
            if score and "published_logprobs" in score:
                theirs = score_reference(item["weights"], score["published_logprobs"])
                compare(score["metrics"], theirs, SCORE_KEYS, diffs["score"])
            steer = item.get("steer")
            if steer and "positions" in steer:
                compare(steer["metrics"], steer_reference(steer["positions"]), STEER_KEYS, diffs["steer"])
    worst_overall = 0.0
    for namespace, pairs in diffs.items():
        worst = max((d for _, d in pairs), default=math.nan)
        worst_key = max(pairs, key=lambda kd: kd[1])[0] if pairs else "-"
        print(
            f"{namespace}: {len(pairs)} metric values recomputed, {skipped[namespace]} item(s) skipped, "
            f"max |difference| = {worst:.3g} ({worst_key})"
        )
        if pairs:
            worst_overall = max(worst_overall, worst)
    if not any(diffs.values()):
        print("nothing to recompute: run eval with --published --keep_generations all")
        return 1
    ok = worst_overall <= args.tol
    print(f"{'agree' if ok else 'DISAGREE'} within {args.tol:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
