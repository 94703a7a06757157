"""Prismatic selection over prompts (Jung et al. 2025, arXiv 2505.20161), round by round.

Each round builds the next batch of prompts (in a seeded random order), embeds every built row by
a small proxy model's loss gradient (:func:`spectrum_tune.analysis.gradients.gradient_features`,
the data report's G-Vendi machinery), clusters the kept and the new rows with k-means
(:func:`spectrum_tune.analysis.selection.kmeans`) and down-samples every cluster above its share
(``ceil(target / k)`` rows: rows kept in earlier rounds first, then new ones in random order), so
over-represented regions give way to rows from sparse ones. Rounds go on until ``target`` rows are
kept or the prompts run out. G-Vendi (the Vendi score of the gradient features) of the selection is
reported beside a random subset of the same size of every built row, and of all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ..analysis.gradients import gradient_features
from ..analysis.rows import Rows
from ..analysis.selection import kmeans
from ..evaluation.metrics import vendi_score
from ..models import load_model, load_tokenizer
from .config import DataBuildConfig

__all__ = ["prismatic_select"]

MAX_LENGTH = 512


def _cap(
    candidates: list[int], labels: np.ndarray, kept: set[int], cap: int, rng: np.random.Generator
) -> list[int]:
    """At most ``cap`` rows per cluster: rows kept before first, then new ones in random order."""
    chosen = []
    for cluster in np.unique(labels):
        members = [c for c, label in zip(candidates, labels, strict=True) if label == cluster]
        old = [m for m in members if m in kept]
        new = [m for m in members if m not in kept]
        chosen += (old + [new[i] for i in rng.permutation(len(new))])[:cap]
    return sorted(chosen)


def _g_vendi(features: dict[int, np.ndarray], rows: list[int]) -> float:
    return vendi_score(np.stack([features[i] for i in rows])) if rows else math.nan


def prismatic_select(
    config: DataBuildConfig, n_prompts: int, build: Callable[[list[int]], list[dict[str, Any]]]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(records of the selected rows, selection summary)``; ``build(indices)`` builds prompts."""
    target = int(config.select)
    batch = config.select_batch or target
    proxy = config.select_model or config.teachers[0].model
    tokenizer, model = load_tokenizer(proxy), load_model(proxy)
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(n_prompts).tolist()
    built: dict[int, dict[str, Any]] = {}
    features: dict[int, np.ndarray] = {}
    kept: list[int] = []
    rounds = []
    position = 0
    while len(kept) < target and position < n_prompts:
        new = sorted(order[position : position + batch])
        position += len(new)
        built.update(zip(new, build(new), strict=True))
        fresh = [i for i in new if built[i]["references"]]
        if fresh:
            rows = Rows(
                [built[i]["prompt"] for i in fresh],
                [built[i]["references"] for i in fresh],
                [built[i]["weights"] for i in fresh],
            )
            grads = gradient_features(
                model,
                tokenizer,
                rows,
                list(range(len(fresh))),
                dim=config.grad_dim,
                rank=config.lora_rank,
                seed=config.seed,
                batch_size=config.batch_size,
                max_length=MAX_LENGTH,
                progress=config.progress,
            )
            features.update(zip(fresh, grads, strict=True))
        candidates = kept + fresh
        if not candidates:
            continue
        matrix = np.stack([features[i] for i in candidates])
        labels, _ = kmeans(matrix, config.select_clusters, seed=config.seed)
        k = int(labels.max()) + 1
        shares = np.bincount(labels) / len(candidates)
        kept = _cap(candidates, labels, set(kept), math.ceil(target / k), rng)[:target]
        rounds.append(
            {
                "prompts_built": len(new),
                "rows_built": len(fresh),
                "candidates": len(candidates),
                "k": k,
                "largest_share": float(shares.max()),
                "kept": len(kept),
            }
        )
    every = sorted(features)
    size = len(kept)
    baseline = sorted(rng.choice(every, size=size, replace=False).tolist()) if size else []
    summary = {
        "target": target,
        "selected": size,
        "prompts_built": len(built),
        "rows_built": len(every),
        "proxy_model": proxy,
        "rounds": rounds,
        "g_vendi_selected": _g_vendi(features, kept),
        "g_vendi_random_same_size": _g_vendi(features, baseline),
        "g_vendi_all_built": _g_vendi(features, every),
        "dropped_sources": [built[i]["source"] for i in every if i not in set(kept)],
    }
    return [built[i] for i in kept], summary
