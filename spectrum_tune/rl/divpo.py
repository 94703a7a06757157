"""DivPO preference pairs (Lanchantin et al., 2025, arXiv 2501.18101) and ordinary pairs.

Input: one row per prompt with a pool of N sampled ``responses`` (and, optionally, their
``scores``; else a quality function scores them), plus the row's own columns (``references``,
``weights``, ``validator``, ``answer``). Output: rows ``{prompt, chosen, rejected}`` in TRL's
preference format (conversational prompts get one-message assistant turns), ready for
``trl.DPOTrainer``.

DivPO: the pool is split by quality into a chosen pool (quality >= ``threshold``, or the top
``floor(top_fraction N)`` of the pool) and a rejected pool (quality < ``threshold``, or the
bottom as many); chosen = the most diverse response of the chosen pool, rejected = the least
diverse of the rejected pool. Diversity of a response = the share of the pool's other responses
in another equivalence class (:func:`~spectrum_tune.rl.rewards.group_diversity`), so "most
diverse" is the rarest answer. Ties: chosen prefers higher quality then the earlier response;
rejected prefers lower quality then the earlier response. A prompt whose pools cannot both be
filled gives no pair.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from ..errors import SpectrumError
from ..io import write_text_atomic
from .equivalence import equivalence_function
from .rewards import RewardFunction, completion_text, group_diversity, validity_reward

__all__ = ["build_pairs_file", "divpo_pairs", "pool_scores", "preference_pairs", "sample_pools"]

RESPONSES, SCORES = "responses", "scores"


def _responses(row: dict[str, Any], where: str) -> list[str]:
    responses = row.get(RESPONSES)
    if not isinstance(responses, list) or not responses:
        raise SpectrumError(f"{where}: needs a non-empty '{RESPONSES}' list (the sampled pool)")
    return [completion_text(item) for item in responses]


def pool_scores(
    row: dict[str, Any], responses: Sequence[str], quality: RewardFunction | None, where: str = "row"
) -> list[float]:
    """Quality of each response: the row's ``scores`` when given, else ``quality`` called the
    way GRPOTrainer calls a reward function (the row's columns repeated per response), the pool
    as one group (``num_generations`` = the pool size, for group-level quality functions)."""
    given = row.get(SCORES)
    if given is not None:
        if not isinstance(given, list) or len(given) != len(responses):
            raise SpectrumError(f"{where}: '{SCORES}' must hold one number per response")
        return [float(score) for score in given]
    if quality is None:
        raise SpectrumError(f"{where}: no '{SCORES}' and no quality function to score the responses")
    count = len(responses)
    columns = {key: [value] * count for key, value in row.items() if key not in {"prompt", RESPONSES}}
    columns["num_generations"] = count
    scores = quality(prompts=[row["prompt"]] * count, completions=list(responses), **columns)
    if any(score is None or math.isnan(score) for score in scores):
        raise SpectrumError(f"{where}: the quality function cannot score this row (it lacks a valid set?)")
    return [float(score) for score in scores]


def _as_turn(prompt: Any, text: str) -> Any:
    return text if isinstance(prompt, str) else [{"role": "assistant", "content": text}]


def _pools(
    scores: Sequence[float], threshold: float | None, top_fraction: float | None
) -> tuple[list[int], list[int]]:
    if top_fraction is not None:
        # floor keeps the pools disjoint (size <= N / 2); a pool of one response gives no pair
        size = math.floor(top_fraction * len(scores))
        if size < 1:
            return [], []
        order = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable: earlier first on ties
        return order[:size], order[-size:]
    high = [i for i, score in enumerate(scores) if score >= threshold]
    low = [i for i, score in enumerate(scores) if score < threshold]
    return high, low


def divpo_pairs(
    rows: Iterable[dict[str, Any]],
    *,
    quality: RewardFunction | None = validity_reward,
    threshold: float | None = 0.5,
    top_fraction: float | None = None,
    equivalence: Any = "normalized",
) -> list[dict[str, Any]]:
    """DivPO pairs from rows with sampled ``responses`` (see the module docstring).

    ``quality`` scores the responses when a row has no ``scores`` (default: validity, so the
    threshold 0.5 splits valid from invalid). Give ``top_fraction`` (0 < f <= 0.5) instead of
    ``threshold`` to split each pool by rank (top / bottom ``floor(f N)``), as the paper's
    percentile threshold does. ``equivalence``: as for :func:`~spectrum_tune.rl.rewards.diversity_reward`."""
    if top_fraction is not None and not 0 < top_fraction <= 0.5:
        raise SpectrumError("top_fraction must be in (0, 0.5] so the two pools do not overlap")
    if top_fraction is None and threshold is None:
        raise SpectrumError("give a quality threshold or a top_fraction")
    classes = equivalence_function(equivalence)
    pairs = []
    for number, row in enumerate(rows, start=1):
        where = str(row.get("source") or f"row {number}")
        responses = _responses(row, where)
        scores = pool_scores(row, responses, quality, where)
        diversity = group_diversity(list(classes(responses)))
        high, low = _pools(scores, threshold, top_fraction)
        if not high or not low:
            continue
        chosen = max(high, key=lambda i: (diversity[i], scores[i], -i))
        rejected = min(low, key=lambda i: (diversity[i], scores[i], i))
        if responses[chosen] == responses[rejected] or chosen == rejected:
            continue  # identical texts carry no preference
        pairs.append(_pair(row, responses, chosen, rejected, scores, diversity))
    return pairs


def preference_pairs(
    rows: Iterable[dict[str, Any]], *, quality: RewardFunction | None = validity_reward
) -> list[dict[str, Any]]:
    """Ordinary pairs from the same pools: chosen = the highest-quality response, rejected = the
    lowest (earlier response on ties); prompts whose responses all score the same give none."""
    pairs = []
    for number, row in enumerate(rows, start=1):
        where = str(row.get("source") or f"row {number}")
        responses = _responses(row, where)
        scores = pool_scores(row, responses, quality, where)
        chosen = max(range(len(scores)), key=lambda i: (scores[i], -i))
        rejected = min(range(len(scores)), key=lambda i: (scores[i], i))
        if scores[chosen] == scores[rejected] or responses[chosen] == responses[rejected]:
            continue
        pairs.append(_pair(row, responses, chosen, rejected, scores, None))
    return pairs


def _pair(
    row: dict[str, Any],
    responses: Sequence[str],
    chosen: int,
    rejected: int,
    scores: Sequence[float],
    diversity: Sequence[float] | None,
) -> dict[str, Any]:
    prompt = row["prompt"]
    pair = {
        "prompt": prompt,
        "chosen": _as_turn(prompt, responses[chosen]),
        "rejected": _as_turn(prompt, responses[rejected]),
        "chosen_score": scores[chosen],
        "rejected_score": scores[rejected],
    }
    if diversity is not None:
        pair["chosen_diversity"] = diversity[chosen]
        pair["rejected_diversity"] = diversity[rejected]
    return pair


def sample_pools(
    rows: list[dict[str, Any]],
    model: Any,
    tokenizer: Any,
    samples: int,
    *,
    max_new_tokens: int = 16,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Rows with a ``responses`` pool of ``samples`` draws each (temperature 1, the eval harness's
    sampler); rows that already carry responses are kept as they are."""
    from ..evaluation.sample import generate_samples, item_seed

    pooled = []
    for index, row in enumerate(rows):
        if row.get(RESPONSES):
            pooled.append(row)
            continue
        responses = generate_samples(
            model,
            tokenizer,
            row["prompt"],
            samples,
            max_new_tokens=max_new_tokens,
            seed=item_seed(seed, "divpo", index),
        )
        pooled.append({**row, RESPONSES: responses})
    return pooled


def build_pairs_file(
    data: str,
    out: str | Path,
    *,
    model: str | None = None,
    adapter: str | None = None,
    samples: int = 16,
    max_new_tokens: int = 16,
    seed: int = 0,
    quality: str = "validity",
    threshold: float | None = 0.5,
    top_fraction: float | None = None,
    equivalence: Any = "normalized",
    ordinary: bool = False,
) -> dict[str, Any]:
    """The ``divpo-pairs`` job: read rows (sampling pools with ``model`` where they have none),
    build DivPO (or, with ``ordinary``, best-vs-worst) pairs and write them as JSONL."""
    from .data import file_rows
    from .recipe import named_reward

    rows = [{**row, "source": where} for where, row in file_rows(data)]
    if any(not row.get(RESPONSES) for row in rows):
        if model is None:
            raise SpectrumError(f"{data}: rows without '{RESPONSES}' need --model to sample them")
        from ..evaluation.runner import load_for_eval

        loaded, tokenizer = load_for_eval(model, adapter)
        rows = sample_pools(rows, loaded, tokenizer, samples, max_new_tokens=max_new_tokens, seed=seed)
    score = named_reward(quality)
    if ordinary:
        pairs = preference_pairs(rows, quality=score)
    else:
        pairs = divpo_pairs(
            rows, quality=score, threshold=threshold, top_fraction=top_fraction, equivalence=equivalence
        )
    write_text_atomic(out, "".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs))
    return {"prompts": len(rows), "pairs": len(pairs), "out": str(out)}
