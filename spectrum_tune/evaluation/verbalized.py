"""Verbalized Sampling (Zhang et al., 2025) as a no-training baseline arm.

Instead of sampling answers, ask the model once for ``k`` answers with the probability of each
(:func:`verbalized_prompt`), parse the list (:func:`parse_verbalized`) and score the *stated*
distribution like a model's in score mode (:func:`verbalized_metrics`): stated mass on valid
answers, coverage of the valid set, and JS / KL / TV to the target, with answers matched by
:func:`~spectrum_tune.evaluation.metrics.normalize_answer`. ``eval --verbalized K`` adds the
``verbalized`` namespace.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from .metrics import distribution_match, normalize_answer

__all__ = [
    "VERBALIZED_INSTRUCTION",
    "parse_verbalized",
    "verbalized_metrics",
    "verbalized_prompt",
    "verbalized_task",
]

VERBALIZED_INSTRUCTION = (
    "Give {k} different possible answers, each with the probability that you would give it. "
    "Write one answer per line as: answer :: probability"
)
# "1. Ohio :: 0.3", "- Ohio: 30%", "Ohio (0.3)", "Ohio - 0.30", "Ohio, p=0.3"
_LINE = re.compile(
    r"^\s*(?:\d+[.)]\s+|[-*\u2022]\s+)?(?P<answer>.+?)\s*(?:::|:|\s-|\u2013|,|\(|\|)\s*"
    r"(?:p\s*=\s*|probability\s*[:=]?\s*)?(?P<value>\d*\.?\d+)\s*(?P<percent>%)?\s*\)?\s*$",
    re.IGNORECASE,
)


def verbalized_prompt(prompt: str | list[dict[str, str]], k: int) -> str | list[dict[str, str]]:
    """The item's prompt with the Verbalized Sampling instruction for ``k`` answers."""
    from .extract import append_instruction

    return append_instruction(prompt, VERBALIZED_INSTRUCTION.format(k=k))


def parse_verbalized(text: str) -> list[tuple[str, float]]:
    """``(answer, probability)`` pairs, one per parsable line; percentages become shares.

    Lines that do not end in a number are skipped; answers keep their text (quotes and
    surrounding space stripped). Probabilities are as stated (not renormalised).
    """
    pairs = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        answer = match.group("answer").strip().strip("\"'*`")
        value = float(match.group("value"))
        if match.group("percent"):
            value /= 100
        if answer and math.isfinite(value):
            pairs.append((answer, value))
    return pairs


def verbalized_metrics(pairs: list[tuple[str, float]], item: Any) -> dict[str, float]:
    """Score a stated distribution against an item (references and weights, or a validator).

    ``vs_n_answers`` parsed pairs; ``vs_valid_mass`` stated probability on valid answers over the
    total stated; ``vs_validity`` share of stated answers that are valid; with references also
    ``vs_coverage`` (distinct valid answers / references) and ``js``/``kl``/``reverse_kl``/``tv``
    of the stated distribution restricted to the references (eps-smoothed, as score mode) vs
    the target. Nothing parsed gives ``nan`` everywhere except ``vs_n_answers`` = 0.
    """
    metrics: dict[str, float] = {"vs_n_answers": float(len(pairs))}
    total = sum(p for _, p in pairs)
    answers = [a for a, _ in pairs]
    mask = item.validity_mask(answers) if pairs else np.zeros(0, dtype=bool)
    if not pairs or total <= 0:
        for name in ("vs_valid_mass", "vs_validity"):
            metrics[name] = math.nan
        if item.references:
            for name in ("vs_coverage", "js", "kl", "reverse_kl", "tv"):
                metrics[name] = math.nan
        return metrics
    metrics["vs_valid_mass"] = float(sum(p for (_, p), ok in zip(pairs, mask, strict=True) if ok) / total)
    metrics["vs_validity"] = float(mask.mean())
    if item.references:
        index = {normalize_answer(r): i for i, r in enumerate(item.references)}
        stated = np.zeros(len(item.references))
        for answer, p in pairs:
            position = index.get(normalize_answer(answer))
            if position is not None:
                stated[position] += p
        metrics["vs_coverage"] = float(np.count_nonzero(stated) / len(item.references))
        if stated.sum() > 0:
            metrics.update(distribution_match(stated, item.weights))
        else:
            metrics.update({name: math.nan for name in ("js", "kl", "reverse_kl", "tv")})
    return metrics


def verbalized_task(
    model: Any, tokenizer: Any, task: Any, k: int, *, seed: int = 0, max_new_tokens: int | None = None
) -> list[dict[str, Any] | None]:
    """One Verbalized Sampling response per item (``None`` for free-text items)."""
    from .backends import Backend, SampleRequest
    from .sample import item_seed, local_draws

    asked = [(index, item) for index, item in enumerate(task.items) if not item.is_freetext]
    requests = [
        # stop=(): the answer list spans lines
        SampleRequest(
            verbalized_prompt(item.prompt, k),
            1,
            max_new_tokens or max(64, 16 * k),
            (),
            item_seed(seed, f"{task.name}/verbalized", index),
        )
        for index, item in asked
    ]
    local = not isinstance(model, Backend)
    drawn = local_draws(model, tokenizer, requests) if local else model.sample_many(requests)
    responses = dict(zip([index for index, _ in asked], drawn, strict=True))
    records: list[dict[str, Any] | None] = []
    for index, item in enumerate(task.items):
        if item.is_freetext:
            records.append(None)
            continue
        (response,) = responses[index]
        pairs = parse_verbalized(response)
        records.append({"metrics": verbalized_metrics(pairs, item), "response": response, "stated": pairs})
    return records
