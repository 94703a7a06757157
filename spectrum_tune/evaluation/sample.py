"""Sample mode: draw N outputs per item (temperature 1, no truncation) and score the samples.

Generation is pure ancestral sampling: every knob that reshapes the next-token distribution is
set to its neutral value explicitly, because ``generate`` otherwise inherits the checkpoint's
``generation_config`` (instruct models often ship ``temperature=0.7, top_k=20``), which would
measure a different distribution than the model's. Outputs end at the end-of-turn token or the
first stop string (cut off, not kept).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

import torch

from ..training.tokenize import _prompt_ids
from .metrics import (
    accuracy,
    answer_counts,
    collision,
    coverage,
    distinct_k,
    distinct_n,
    embed_texts,
    embedding_diversity,
    empirical_distribution,
    normalized_entropy,
    raw_unique_pct,
    sample_distribution_match,
    self_bleu,
    unique_pct,
    valid_samples,
    validity,
    vendi_score,
    yield_count,
)
from .tasks import Item, Task

__all__ = ["generate_samples", "item_seed", "sample_metrics", "sample_task"]

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
"""Raw generations kept per item in results.json (answer counts keep the rest)."""
DISTINCT_K = 10
"""NoveltyBench's k: distinct classes among the first 10 generations."""
N_BOOT = 1000


def item_seed(seed: int, task: str, index: int) -> int:
    """A per-item seed, so an item's samples do not depend on which other tasks ran before it."""
    return (seed * 1_000_003 + zlib.crc32(f"{task}/{index}".encode())) % 2**31


def _cut(ids: Sequence[int], stop_ids: set[int]) -> list[int]:
    for position, token in enumerate(ids):
        if token in stop_ids:
            return list(ids[:position])
    return list(ids)


def _cut_text(text: str, stop: Sequence[str]) -> str:
    cuts = [text.index(s) for s in stop if s in text]
    return text[: min(cuts)] if cuts else text


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
) -> list[str]:
    """``n`` sampled completions of ``prompt`` (chat prompts get the generation prompt).

    Batches of ``num_return_sequences <= batch_size`` share one prompt. ``torch.manual_seed(seed)``
    runs first, so the same seed, model and batch size give the same samples.
    """
    prompt_ids = _prompt_ids(prompt, tokenizer)
    device = next(model.parameters()).device
    input_ids = torch.tensor([prompt_ids], device=device)
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    stop_ids = {eos, pad} - {None}
    torch.manual_seed(seed)
    samples: list[str] = []
    while len(samples) < n:
        count = min(batch_size, n - len(samples))
        output = model.generate(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=max_new_tokens,
            num_return_sequences=count,
            eos_token_id=eos,
            pad_token_id=pad,
            # stop strings end a sequence early; the text is cut below either way
            stop_strings=list(stop) or None,
            tokenizer=tokenizer,
            **{**NEUTRAL_SAMPLING, "temperature": temperature, "top_p": top_p},
        )
        for row in output[:, len(prompt_ids) :].tolist():
            text = tokenizer.decode(_cut(row, stop_ids), skip_special_tokens=False)
            samples.append(_cut_text(text, stop))
        if on_batch is not None:
            on_batch(count)
    return samples


def _freetext_metrics(samples: Sequence[str]) -> dict[str, float]:
    texts = [s.strip() for s in samples]
    embeddings = embed_texts(texts)
    return {
        "raw_unique_pct": raw_unique_pct(texts),
        # support = the number of samples: 1 when all differ, 0 when all are the same
        "entropy": normalized_entropy(texts, support_size=len(texts)),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "self_bleu": self_bleu(texts),
        "vendi": vendi_score(embeddings),
        "embedding_diversity": embedding_diversity(embeddings),
        "distinct_k": float(distinct_k(texts, DISTINCT_K)),
    }


def sample_metrics(
    item: Item, samples: Sequence[str], *, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, float]:
    """Sample-mode metrics of one item (which ones depends on what the item lists)."""
    if item.is_freetext:
        return _freetext_metrics(samples)
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
        metrics.update(sample_distribution_match(samples, item.references, item.weights, n_boot, seed))
        counts = empirical_distribution(samples, item.references)
        metrics["entropy"] = normalized_entropy(counts=counts, support_size=len(item.references))
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
    temperature: float = 1.0,
    top_p: float = 1.0,
) -> list[dict[str, Any]]:
    """Per-item sample records: metrics, answer counts and the first raw generations."""
    from tqdm.auto import tqdm

    n = samples or task.samples
    records = []
    with tqdm(total=n * len(task.items), desc=f"sample {task.name}", unit="gen", disable=not progress) as bar:
        for index, item in enumerate(task.items):
            item_rng_seed = item_seed(seed, task.name, index)
            generations = generate_samples(
                model,
                tokenizer,
                item.prompt,
                n,
                max_new_tokens=task.max_new_tokens,
                stop=task.stop,
                batch_size=batch_size,
                seed=item_rng_seed,
                on_batch=bar.update,
                temperature=temperature,
                top_p=top_p,
            )
            records.append(
                {
                    "metrics": sample_metrics(item, generations, seed=item_rng_seed),
                    "counts": dict(answer_counts(generations).most_common()),
                    "generations": generations[:KEEP_GENERATIONS],
                }
            )
    return records
