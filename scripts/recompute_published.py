"""Recompute the published (tsor13/spectrum) metrics of a results.json from its kept generations.

An independent, deliberately plain re-implementation of the reference formulas (loops over pairs,
``np.where`` divergences as the reference writes them), sharing no code with
``spectrum_tune.evaluation.published``. Run it on a results.json written by
``spectrum-tune eval --published --keep_generations all``::

    python scripts/recompute_published.py runs/eval/results.json [--tol 1e-9]

It prints, per namespace, how many item metrics it recomputed and the largest absolute difference,
and exits 1 when a difference exceeds ``--tol`` (or nothing could be recomputed). Items whose
validity it cannot rebuild (regex / list-file validators) are counted as skipped.
"""

from __future__ import annotations

import argparse
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
    if references:
        validity = [t in references for t in texts]
    elif isinstance(validator, dict) and {"min", "max"} <= set(validator):
        # results.json keeps an int_range validator as its {min, max} spec
        validity = [is_int_in_range(t, validator["min"], validator["max"]) for t in texts]
    else:
        return None
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
    diffs = {"sample": [], "score": []}
    skipped = {"sample": 0, "score": 0}
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
