"""Sample mode: draw N outputs per item (temperature 1, no truncation) and score the samples.

Generation is pure ancestral sampling: every knob that reshapes the next-token distribution is
set to its neutral value explicitly, because ``generate`` otherwise inherits the checkpoint's
``generation_config`` (instruct models often ship ``temperature=0.7, top_k=20``), which would
measure a different distribution than the model's. Outputs end at any of the model's stop tokens
or the template's end-of-turn (:mod:`.stops`) or the first stop string (cut off, not kept), and are
decoded without special tokens.
"""

from __future__ import annotations

import functools
import math
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..training.tokenize import _prompt_ids
from .backends import Backend, SampleRequest
from .extract import extract_answer
from .metrics import (
    accuracy,
    answer_counts,
    collision,
    coverage,
    distinct_n,
    embed_texts,
    embedding_diversity,
    empirical_distribution,
    intdiv,
    normalize_answer,
    normalized_entropy,
    novelty,
    raw_unique_pct,
    sample_distribution_match,
    self_bleu,
    unique_pct,
    valid_samples,
    validity,
    vendi_score,
    yield_count,
)
from .overtone import overtone_scores
from .prompt_cache import encode_prompt, expanded_cache, notice_fallback, own_loop_blocker, sample_rows
from .published import diverse_valid_metrics, published_text
from .stops import decode_sample, stop_token_ids
from .tasks import Item, Task

__all__ = [
    "extracted_counts",
    "generate_samples",
    "item_seed",
    "local_draws",
    "sample_metrics",
    "sample_task",
]

NEUTRAL_SAMPLING = {
    "do_sample": True,
    "temperature": 1.0,
    "top_k": 0,
    "top_p": 1.0,
    "min_p": 0.0,
    "typical_p": 1.0,
    "epsilon_cutoff": 0.0,
    "eta_cutoff": 0.0,
    "repetition_penalty": 1.0,
    "encoder_repetition_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "min_new_tokens": 0,
}
KEEP_GENERATIONS = 10
"""Raw generations kept per item in results.json by default (answer counts keep the rest;
``--keep_generations all`` keeps every one)."""
DISTINCT_K = 10
"""NoveltyBench's k: distinct classes among the first 10 generations."""
N_BOOT = 1000


def item_seed(seed: int, task: str, index: int) -> int:
    """A per-item seed, so an item's samples do not depend on which other tasks ran before it."""
    return (seed * 1_000_003 + zlib.crc32(f"{task}/{index}".encode())) % 2**31


def _cut_text(text: str, stop: Sequence[str]) -> str:
    cuts = [text.index(s) for s in stop if s in text]
    return text[: min(cuts)] if cuts else text


@functools.lru_cache(maxsize=8)
def _stop_criteria(tokenizer: Any, stop: tuple[str, ...]) -> Any:
    """generate's stop-string test, built once per tokenizer and stops (it indexes the whole vocabulary)."""
    from transformers.generation.stopping_criteria import StopStringCriteria

    return StopStringCriteria(tokenizer, list(stop))


def _generate(
    model: Any,
    tokenizer: Any,
    input_ids: torch.Tensor,
    count: int,
    cache: Any,
    *,
    max_new_tokens: int,
    eos_ids: list[int],
    stop: Sequence[str],
    temperature: float,
    top_p: float,
) -> list[list[int]]:
    """``count`` continuations from ``generate``: of the prompt copied per row (``cache`` None) or
    of a copy of the prompt's cache repeated to ``count`` rows."""
    if cache is None:
        rows: dict[str, Any] = {"input_ids": input_ids, "num_return_sequences": count}
    else:
        # cache_implementation=None: a checkpoint default ("hybrid") may not sit beside a given cache
        rows = {
            "input_ids": input_ids.expand(count, -1),
            "cache": expanded_cache(cache, count),
            "cache_implementation": None,
        }
    output = model.generate(
        **rows,
        attention_mask=torch.ones_like(rows["input_ids"]),
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_ids,
        pad_token_id=tokenizer.pad_token_id,
        # stop strings end a sequence early; the text is cut below either way
        stop_strings=list(stop) or None,
        tokenizer=tokenizer,
        **{**NEUTRAL_SAMPLING, "temperature": temperature, "top_p": top_p},
    )
    return output[:, input_ids.size(1) :].tolist()


@torch.no_grad()
def generate_samples(
    model: Any,
    tokenizer: Any,
    prompt: str | list[dict[str, str]],
    n: int,
    *,
    max_new_tokens: int = 16,
    stop: Sequence[str] = ("\n",),
    batch_size: int = 64,
    seed: int = 0,
    on_batch: Callable[[int], None] | None = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    prefill_once: bool = True,
) -> list[str]:
    """``n`` sampled completions of ``prompt`` (chat prompts get the generation prompt).

    Batches of up to ``batch_size`` rows continue one prompt. ``torch.manual_seed(seed)`` runs
    first, so the same seed, model and batch size give the same samples. ``prefill_once`` (the
    default) encodes the prompt once and continues every batch from a copy of its cache, in
    :func:`.prompt_cache.sample_rows` (finished rows leave the batch), or in ``generate`` where
    the checkpoint's generation config adds logits processors; ``False`` lets
    ``generate(num_return_sequences=...)`` copy the prompt per sample, the slower path it
    replaces. All three draw the same tokens for the same seed.
    """
    prompt_ids = _prompt_ids(prompt, tokenizer)
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt_ids], device=device)
    eos_ids = stop_token_ids(model, tokenizer, prompt)
    pad = tokenizer.pad_token_id
    stop_ids = {*eos_ids, pad} - {None}
    cache, own_loop = None, False
    if prefill_once and n > 1:  # one sample has nothing to share
        cache, reason = encode_prompt(model, input_ids)
        if reason is not None:
            notice_fallback(reason)
        own_loop = cache is not None and own_loop_blocker(model) is None
    stop_criteria = _stop_criteria(tokenizer, tuple(stop)) if own_loop and stop else None
    torch.manual_seed(seed)
    samples: list[str] = []
    while len(samples) < n:
        count = min(batch_size, n - len(samples))
        if own_loop:
            rows = sample_rows(
                model,
                cache,
                input_ids,
                count,
                max_new_tokens=max_new_tokens,
                eos_ids=eos_ids,
                stop_criteria=stop_criteria,
                temperature=temperature,
                top_p=top_p,
            )
        else:
            rows = _generate(
                model,
                tokenizer,
                input_ids,
                count,
                cache,
                max_new_tokens=max_new_tokens,
                eos_ids=eos_ids,
                stop=stop,
                temperature=temperature,
                top_p=top_p,
            )
        for row in rows:
            samples.append(_cut_text(decode_sample(tokenizer, row, stop_ids), stop))
        if on_batch is not None:
            on_batch(count)
    return samples


def local_draws(
    model: Any,
    tokenizer: Any,
    requests: Sequence[SampleRequest],
    *,
    batch_size: int = 64,
    prefill_once: bool = True,
    on_batch: Callable[[int], None] | None = None,
) -> list[list[str]]:
    """:func:`generate_samples` for each request in turn (the local backend's ``sample_many``)."""
    return [
        generate_samples(
            model,
            tokenizer,
            request.prompt,
            request.n,
            max_new_tokens=request.max_new_tokens,
            stop=request.stop,
            batch_size=batch_size,
            seed=request.seed,
            on_batch=on_batch,
            temperature=request.temperature,
            top_p=request.top_p,
            prefill_once=prefill_once,
        )
        for request in requests
    ]


def _freetext_metrics(
    samples: Sequence[str], prompt: Any = None, judges: dict[str, Any] | None = None
) -> dict[str, float]:
    """Free-text spread; texts are compared whole (stripped), never cut at a line break."""
    texts = [s.strip() for s in samples]
    embeddings = embed_texts(texts)
    judges = judges or {}
    head = texts[:DISTINCT_K]
    partition = novelty.equivalence_classes(
        head, classifier=judges.get("classifier"), threshold=judges.get("threshold")
    )
    metrics = {
        "raw_unique_pct": raw_unique_pct(texts, normalize=False),
        # support = the number of samples: 1 when all differ, 0 when all are the same
        "entropy": normalized_entropy(texts, support_size=len(texts), normalize=False),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "self_bleu": self_bleu(texts),
        "vendi": vendi_score(embeddings),
        "intdiv": intdiv(embeddings),
        "embedding_diversity": embedding_diversity(embeddings),
        "distinct_k": float(max(partition, default=-1) + 1),
    }
    if judges.get("reward_model") is not None and head:
        user_text = prompt if isinstance(prompt, str) else prompt[-1]["content"]
        ratings = judges["reward_model"].ratings(user_text, head)
        patience = judges.get("patience", novelty.DEFAULT_PATIENCE)
        metrics["utility_k"] = novelty.utility(ratings, partition, patience)
    return metrics


def extracted_counts(item: Item, samples: Sequence[str], mode: str, pattern: Any = None) -> dict[str, int]:
    """Normalised answer -> count of the answers ``extract`` reads, most common first; samples it
    reads nothing from count under ``""`` (they are still part of the output distribution)."""
    answers = [extract_answer(s, mode, item, pattern) for s in samples]
    return dict(answer_counts("" if a is None else a for a in answers).most_common())


def _extracted_metrics(item: Item, samples: Sequence[str], mode: str, pattern: Any) -> dict[str, float]:
    """Validity, yield and coverage of the answers ``extract`` reads from the samples (None = invalid)."""
    answers = [extract_answer(s, mode, item, pattern) for s in samples]
    present = [a for a in answers if a is not None]
    mask = item.validity_mask(present) if present else np.zeros(0, dtype=bool)
    metrics = {
        "validity_extracted": float(mask.sum() / len(samples)) if samples else math.nan,
        "yield_extracted": float(yield_count(present, is_valid=mask)),
    }
    if item.references and not item.is_closed:
        metrics["coverage_extracted"] = coverage(
            [a for a, ok in zip(present, mask, strict=True) if ok], item.references
        )
    return metrics


def published_sample_metrics(item: Item, samples: Sequence[str]) -> dict[str, float]:
    """The reference's diverse-valid metrics (exact match after strip, valid list as given)."""
    texts = [published_text(s) for s in samples]
    size = len(item.references) if item.references else None
    return diverse_valid_metrics(texts, item.published_mask(samples).tolist(), size)


def sample_metrics(
    item: Item,
    samples: Sequence[str],
    *,
    n_boot: int = N_BOOT,
    seed: int = 0,
    published: bool = False,
    extract: str | None = None,
    extract_pattern: Any = None,
    judges: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Sample-mode metrics of one item (which ones depends on what the item lists).

    ``published`` adds the reference's metrics (:mod:`spectrum_tune.evaluation.published`); its
    ``raw_unique_pct`` (exact strings) then takes that name and ours is kept as
    ``raw_unique_pct_normalized``. ``extract`` adds ``*_extracted`` metrics; ``judges`` holds the
    NoveltyBench equivalence classifier / reward model for free text.
    """
    if item.viewpoints:  # overtone: free-text spread plus per-response viewpoint coverage
        metrics = _freetext_metrics(samples, item.prompt, judges)
        metrics.update(overtone_scores(samples, item.viewpoints, (judges or {}).get("overtone"))[0])
        return metrics
    if item.is_freetext:
        return _freetext_metrics(samples, item.prompt, judges)
    metrics = _answer_metrics(item, samples, n_boot, seed)
    if extract is not None:
        metrics.update(_extracted_metrics(item, samples, extract, extract_pattern))
    if published:
        metrics["raw_unique_pct_normalized"] = metrics.pop("raw_unique_pct")
        metrics.update(published_sample_metrics(item, samples))
    return metrics


def _normalised_support(item: Item) -> tuple[list[str], list[float]]:
    """References merged by normalised form, their target weights summed.

    A valid list may spell one answer several ways on purpose (the published ``weekdays_full``
    lists "Monday", "MONDAY" and "monday"); our metrics match normalised answers, so those are one
    support point.
    """
    merged: dict[str, float] = {}
    for reference, weight in zip(item.references, item.weights, strict=True):
        key = normalize_answer(reference)
        merged[key] = merged.get(key, 0.0) + weight
    return list(merged), list(merged.values())


def _answer_metrics(item: Item, samples: Sequence[str], n_boot: int, seed: int) -> dict[str, float]:
    mask = item.validity_mask(samples)
    collision_value, collision_se = collision(samples, is_valid=mask)
    metrics = {
        "validity": validity(mask),
        "yield": float(yield_count(samples, is_valid=mask)),
        "unique_pct": unique_pct(samples, is_valid=mask),
        "raw_unique_pct": raw_unique_pct(samples),
        "collision": collision_value,
        "collision_se": collision_se,
    }
    if item.is_closed:
        metrics["accuracy"] = accuracy(samples, item.references[0])
    elif item.references:
        metrics["coverage"] = coverage(samples, item.references)
        support, weights = _normalised_support(item)
        metrics.update(sample_distribution_match(samples, support, weights, n_boot, seed))
        counts = empirical_distribution(samples, support)
        metrics["entropy"] = normalized_entropy(counts=counts, support_size=len(support))
    else:
        valid = valid_samples(samples, is_valid=mask)
        # spellings of one answer ("07", "7") can outnumber a validator's nominal size
        size = max(item.validator.size or 0, len(set(valid))) or None
        metrics["entropy"] = normalized_entropy(valid, support_size=size)
    return metrics


def sample_task(
    model: Any,
    tokenizer: Any,
    task: Task,
    *,
    samples: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    progress: bool = True,
    published: bool = False,
    keep_generations: int | None = KEEP_GENERATIONS,
    judges: dict[str, Any] | None = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    prefill_once: bool = True,
) -> list[dict[str, Any]]:
    """Per-item sample records: metrics, answer counts and the first ``keep_generations`` raw
    generations (``None``: all of them); ``published`` as in :func:`sample_metrics` (or the task's own);
    ``prefill_once`` as in :func:`generate_samples`. ``model`` may be a
    :class:`~spectrum_tune.evaluation.backends.Backend` (a served model): it draws the samples."""
    from tqdm.auto import tqdm

    n = samples or task.samples
    seeds = [item_seed(seed, task.name, index) for index in range(len(task.items))]
    requests = [
        SampleRequest(item.prompt, n, task.max_new_tokens, tuple(task.stop), item_seed_, temperature, top_p)
        for item, item_seed_ in zip(task.items, seeds, strict=True)
    ]
    with tqdm(total=n * len(task.items), desc=f"sample {task.name}", unit="gen", disable=not progress) as bar:
        if isinstance(model, Backend):
            drawn = model.sample_many(requests, on_batch=bar.update)
        else:
            drawn = local_draws(
                model,
                tokenizer,
                requests,
                batch_size=batch_size,
                prefill_once=prefill_once,
                on_batch=bar.update,
            )
    records = []
    for item, item_rng_seed, generations in zip(task.items, seeds, drawn, strict=True):
        record = {
            "metrics": sample_metrics(
                item,
                generations,
                seed=item_rng_seed,
                published=published or task.published,
                extract=task.extract,
                extract_pattern=task.extract_pattern,
                judges=judges,
            ),
            "counts": dict(answer_counts(generations).most_common()),
            "generations": generations[:keep_generations],
            "n_generations": len(generations),
        }
        if item.viewpoints:  # per viewpoint, the share of the samples that present it
            record["viewpoints"] = overtone_scores(
                generations, item.viewpoints, (judges or {}).get("overtone")
            )[1]
        if task.extract is not None:
            # what cross-model homogeneity compares when a chat model's verbose answers sit
            # beside a base model's bare ones (analysis.homogeneity)
            record["counts_extracted"] = extracted_counts(
                item, generations, task.extract, task.extract_pattern
            )
        records.append(record)
    return records
