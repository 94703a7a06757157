"""Reward functions for ``trl.GRPOTrainer`` that read the multi-reference row schema.

TRL calls every reward function as ``f(prompts=..., completions=..., completion_ids=...,
**columns)`` where each dataset column (``references``, ``weights``, ``validator``, ``answer``,
...) arrives as a list aligned with the completions, and returns one float (or ``None``) per
completion. Each process calls it on its own slice of the generation batch only, so a prompt's
``num_generations`` completions may be split across processes, and two rows with the same prompt
text are two groups. The group-level rewards (distribution, diversity, popularity) therefore
score the groups the way TRL forms them, runs of ``num_generations`` by position in the global
batch, gathered from every process (:func:`~spectrum_tune.rl.groups.gather_groups`); called
outside a trainer they need ``num_generations=G`` and a call of whole groups in order.

* :func:`validity_reward` -- a plain function: 1.0 for a valid completion, 0.0 otherwise.
* :func:`distribution_reward` -- a plain function: the leave-one-out decrease in Jensen-Shannon
  divergence between the group's answer distribution and the row's target weights.
* :func:`diversity_reward` -- DARLING's form, quality x diversity; a plain function with the
  defaults (quality = validity, equivalence = normalised answer) and a factory when called
  without ``prompts``/``completions`` (``diversity_reward(quality=..., equivalence=...)``).

Completions may be standard (a string) or conversational (a list of messages; the content of
the last one is the answer). Rows without what a reward needs get ``None``, which TRL turns into
NaN and leaves out of its sums.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import SpectrumError
from ..evaluation.metrics import js_divergence, normalize_answer
from .equivalence import equivalence_function
from .groups import gather_groups

__all__ = [
    "RewardFunction",
    "completion_text",
    "distribution_reward",
    "diversity_reward",
    "group_distribution_rewards",
    "group_diversity",
    "popularity_reward",
    "validity_reward",
]

RewardFunction = Callable[..., list[float | None]]


# --------------------------------------------------------------------------------------------
# Reading TRL's arguments
# --------------------------------------------------------------------------------------------


def completion_text(completion: Any) -> str:
    """The answer text of one completion: the string itself, or the last message's content."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return str(completion[-1].get("content") or "")
    raise SpectrumError(
        f"a completion must be a string or a list of chat messages, got {type(completion).__name__}"
    )


def _column(kwargs: dict[str, Any], name: str, count: int) -> list[Any]:
    values = kwargs.get(name)
    if values is None:
        return [None] * count
    if len(values) != count:
        raise SpectrumError(f"column '{name}' has {len(values)} values for {count} completions")
    return list(values)


@lru_cache(maxsize=1024)
def _validator(spec_json: str, base: str) -> Any:
    from ..evaluation.tasks import parse_validator

    spec = json.loads(spec_json)
    return parse_validator(spec, "validator column", Path(base))


def _validator_from_cell(cell: Any) -> Any:
    """A validator cell as written in the row schema: a mapping, or its JSON string. Arrow
    stores mixed validator kinds as one struct with null fields; those nulls are dropped."""
    if cell is None or cell == "":
        return None
    if isinstance(cell, str):
        try:
            cell = json.loads(cell)
        except json.JSONDecodeError:
            raise SpectrumError(f"validator column: '{cell}' is not JSON") from None
    if isinstance(cell, dict):
        cell = {key: value for key, value in cell.items() if value is not None}
        if not cell:
            return None
        if isinstance(cell.get("int_range"), dict):  # arrow may widen ints to floats
            cell["int_range"] = {k: int(v) for k, v in cell["int_range"].items()}
    # one_of_file paths resolve against the working directory (where the recipe runs)
    return _validator(json.dumps(cell, sort_keys=True), str(Path.cwd()))


def _checker(reference: Any, validator: Any, answer: Any) -> Callable[[str], bool] | None:
    """A predicate for one row's valid set, or None when the row defines none."""
    listed: set[str] = set()
    if answer is not None and answer != "":
        listed.add(normalize_answer(str(answer)))
    if reference:
        listed.update(normalize_answer(str(item)) for item in reference)
    check = _validator_from_cell(validator)
    if not listed and check is None:
        return None
    return lambda text: normalize_answer(text) in listed or (check is not None and check(text))


# --------------------------------------------------------------------------------------------
# Validity
# --------------------------------------------------------------------------------------------


def validity_reward(prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
    """1.0 when a completion is valid for its row, else 0.0 (a plain TRL reward function).

    Valid means: after :func:`~spectrum_tune.evaluation.metrics.normalize_answer`, equal to the
    row's ``answer`` (one right answer: accuracy) or one of its ``references``, or accepted by its
    ``validator`` (``{int_range: {min, max}}``, ``{regex: ...}``, ``{one_of_file: path}``, as a
    mapping or a JSON string). Rows with none of the three get ``None``."""
    count = len(completions)
    references = _column(kwargs, "references", count)
    validators = _column(kwargs, "validator", count)
    answers = _column(kwargs, "answer", count)
    rewards: list[float | None] = []
    for index, completion in enumerate(completions):
        check = _checker(references[index], validators[index], answers[index])
        rewards.append(None if check is None else float(check(completion_text(completion))))
    return rewards


# --------------------------------------------------------------------------------------------
# Distribution
# --------------------------------------------------------------------------------------------

_EMPTY_JS = math.log(2.0)  # JS of "no answers yet": its maximum, ln 2


def _js_to_target(counts: list[float], target: list[float]) -> float:
    if sum(counts) <= 0:
        return _EMPTY_JS
    return js_divergence(counts, target)


def group_distribution_rewards(
    answers: Sequence[str], references: Sequence[str], weights: Sequence[float] | None
) -> list[float]:
    """Leave-one-out rewards of one group (the core of :func:`distribution_reward`).

    Bins: the references plus one "invalid" bin whose target weight is 0. ``p`` = counts of the
    group's answers over the bins; ``p_-i`` = the same without answer ``i``. Reward
    ``r_i = G * (JS(p_-i, w) - JS(p, w))``: positive when including the answer moves the
    group's distribution toward the target ``w``, negative when it moves it away (an invalid
    answer always does). The factor ``G`` keeps the scale independent of the group size;
    an empty distribution counts as JS = ln 2 (the maximum)."""
    canon = [normalize_answer(str(item)) for item in references]
    index = {answer: position for position, answer in enumerate(canon)}
    if len(index) != len(canon):
        raise SpectrumError("references have duplicates after normalisation")
    target = [float(w) for w in weights] if weights else [1.0] * len(canon)
    if len(target) != len(canon) or min(target) < 0 or sum(target) <= 0:
        raise SpectrumError("weights must be non-negative, one per reference, not all zero")
    target = [*target, 0.0]
    bins = [index.get(normalize_answer(text), len(canon)) for text in answers]
    counts = [0.0] * (len(canon) + 1)
    for position in bins:
        counts[position] += 1
    full = _js_to_target(counts, target)
    size = len(answers)
    rewards = []
    cache: dict[int, float] = {}  # answers in the same bin share their leave-one-out value
    for position in bins:
        if position not in cache:
            counts[position] -= 1
            cache[position] = size * (_js_to_target(counts, target) - full)
            counts[position] += 1
        rewards.append(cache[position])
    return rewards


def distribution_reward(
    prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
) -> list[float | None]:
    """How much each completion moves its group's answer distribution toward the row's target
    (a plain TRL reward function; rows need ``references``, optionally ``weights``).

    Form: the leave-one-out decrease in Jensen-Shannon divergence (natural log),
    ``r_i = G * (JS(p_-i, w) - JS(p, w))`` with an extra zero-target bin for invalid answers;
    see :func:`group_distribution_rewards`. Why JS: it stays finite when a group misses some
    target answers (always, when G < |references|) or holds invalid ones, where either KL would
    be infinite, and unlike total variation it still grades a move between two over-represented
    answers. Why leave-one-out: it is each completion's marginal effect on the group-level
    objective, so the sum over the group tracks the group's distance to the target. Rows
    without ``references`` get ``None``.

    A group is a run of ``num_generations`` completions of the trainer's generation batch
    (gathered from every process), scored against its own row's ``references``/``weights``;
    outside a trainer pass ``num_generations=G`` (see :func:`~spectrum_tune.rl.groups.gather_groups`)."""
    count = len(completions)
    batch = gather_groups(
        "distribution_reward",
        prompts,
        kwargs,
        text=[completion_text(c) for c in completions],
        references=_column(kwargs, "references", count),
        weights=_column(kwargs, "weights", count),
    )
    texts, references, weights = (batch.columns[key] for key in ("text", "references", "weights"))
    rewards: list[float | None] = [None] * len(texts)
    for group in batch.groups():
        first = group[0]
        if not references[first]:
            continue
        values = group_distribution_rewards([texts[i] for i in group], references[first], weights[first])
        for position, value in zip(group, values, strict=True):
            rewards[position] = value
    return batch.local(rewards)


# --------------------------------------------------------------------------------------------
# Diversity (DARLING)
# --------------------------------------------------------------------------------------------


def group_diversity(class_ids: Sequence[Hashable]) -> list[float]:
    """DARLING's normalised diversity of each member of one group.

    ``d_i = (G - n_i) / (G - 1)`` where ``n_i`` is the size of completion ``i``'s equivalence
    class: the share of the group's other completions that lie in another class (1 for a
    completion no other one repeats, 0 when all are one class). A group of one gets 1."""
    size = len(class_ids)
    if size <= 1:
        return [1.0] * size
    sizes: dict[Hashable, int] = {}
    for class_id in class_ids:
        sizes[class_id] = sizes.get(class_id, 0) + 1
    return [(size - sizes[class_id]) / (size - 1) for class_id in class_ids]


def _quality_scores(
    quality: RewardFunction | None, prompts: Sequence[Any], completions: Sequence[Any], kwargs: dict[str, Any]
) -> list[float]:
    if quality is None:
        return [1.0] * len(completions)
    scores = quality(prompts=prompts, completions=completions, **kwargs)
    if len(scores) != len(completions):
        raise SpectrumError(
            f"the quality function returned {len(scores)} scores for {len(completions)} completions"
        )
    # a row the quality function cannot judge (None / NaN) is scored by diversity alone
    return [1.0 if score is None or score != score else float(score) for score in scores]


def diversity_reward(
    prompts: Sequence[Any] | None = None,
    completions: Sequence[Any] | None = None,
    *,
    quality: RewardFunction | None = validity_reward,
    equivalence: Any = "normalized",
    **kwargs: Any,
) -> Any:
    """DARLING's reward, ``quality_i * d_i`` (see :func:`group_diversity`), per GRPO group: a run
    of ``num_generations`` completions of the trainer's generation batch, gathered from every
    process (outside a trainer pass ``num_generations=G``; see
    :func:`~spectrum_tune.rl.groups.gather_groups`).

    Two ways to use it: as a plain reward function (``reward_funcs=[diversity_reward]``:
    quality = :func:`validity_reward`, equivalence = normalised answer), or as a factory when
    called without ``prompts`` and ``completions``::

        reward = diversity_reward(quality=my_reward, equivalence="path/to/classifier")

    ``quality`` is any TRL-signature reward function (or ``None`` for diversity alone);
    ``equivalence`` is ``"normalized"``, ``"exact"``, ``"novelty"`` (when installed), a callable
    ``texts -> class ids`` or a pair-classifier model path (loaded once, by the factory)."""
    if prompts is None and completions is None:
        classes = equivalence_function(equivalence)

        def diversity_reward(
            prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
        ) -> list[float | None]:
            return _diversity(prompts, completions, quality, classes, kwargs)

        diversity_reward.__doc__ = f"DARLING diversity reward (equivalence={equivalence!r})."
        return diversity_reward
    if prompts is None or completions is None:
        raise SpectrumError("diversity_reward needs both prompts and completions")
    return _diversity(prompts, completions, quality, equivalence_function(equivalence), kwargs)


def _diversity(
    prompts: Sequence[Any],
    completions: Sequence[Any],
    quality: RewardFunction | None,
    classes: Any,
    kwargs: dict[str, Any],
) -> list[float | None]:
    # quality is a TRL reward function: called on this process's slice as TRL would call it
    # (a group-level quality gathers its own groups), its scores then gathered with the texts
    batch = gather_groups(
        "diversity_reward",
        prompts,
        kwargs,
        text=[completion_text(c) for c in completions],
        score=_quality_scores(quality, prompts, completions, kwargs),
    )
    texts, scores = batch.columns["text"], batch.columns["score"]
    rewards: list[float | None] = [None] * len(texts)
    for group in batch.groups():
        ids = list(classes([texts[i] for i in group]))
        if len(ids) != len(group):
            raise SpectrumError(f"the equivalence returned {len(ids)} class ids for {len(group)} texts")
        for position, diversity in zip(group, group_diversity(ids), strict=True):
            rewards[position] = scores[position] * diversity
    return batch.local(rewards)


# --------------------------------------------------------------------------------------------
# Popularity (the demo's stand-in for a reward model that prefers typical answers)
# --------------------------------------------------------------------------------------------


def popularity_reward(margin: float = 0.2) -> RewardFunction:
    """A factory for a quality reward that mildly prefers the popular answers, as learned reward
    models tend to: ``q_i = v_i * (1 - margin + margin * n_i / G)``, where ``v_i`` is
    :func:`validity_reward` (1 when the row has no valid set), ``n_i`` the number of the group's
    completions with the same normalised answer and ``G`` the group size. A valid answer every
    completion gives scores 1; a valid answer given once scores about ``1 - margin``. Groups as
    for :func:`distribution_reward` (outside a trainer pass ``num_generations=G``)."""
    if not 0 <= margin <= 1:
        raise SpectrumError("popularity margin must be in [0, 1]")

    def popularity_reward(
        prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float | None]:
        batch = gather_groups(
            "popularity_reward",
            prompts,
            kwargs,
            answer=[normalize_answer(completion_text(c)) for c in completions],
            valid=validity_reward(prompts, completions, **kwargs),
        )
        answers, valid = batch.columns["answer"], batch.columns["valid"]
        rewards: list[float | None] = [None] * len(answers)
        for group in batch.groups():
            counts: dict[str, int] = {}
            for i in group:
                counts[answers[i]] = counts.get(answers[i], 0) + 1
            for i in group:
                validity = 1.0 if valid[i] is None else valid[i]
                rewards[i] = validity * (1 - margin + margin * counts[answers[i]] / len(group))
        return batch.local(rewards)

    return popularity_reward
