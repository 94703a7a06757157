"""NoveltyBench prompts (``yimingzhang/novelty-bench``: splits ``curated``, ``wildchat``) as free-text tasks.

Each prompt is a free-text item sampled 10 times (NoveltyBench's k); the sample metrics include
``distinct_k`` under NoveltyBench's equivalence and, with ``--reward_model``, ``utility_k``
(:mod:`spectrum_tune.evaluation.metrics.novelty`). Generations are compared whole (no stop string).
"""

from __future__ import annotations

from pathlib import Path

from ...training.data import DataError
from ..items import Item, Task
from .hub import hub_rows

__all__ = ["HUB_ID", "SPLITS", "load"]

HUB_ID = "yimingzhang/novelty-bench"
SPLITS = ("curated", "wildchat")
SAMPLES = 10
MAX_NEW_TOKENS = 512


def load(
    split: str = "curated", max_items: int | None = None, max_new_tokens: int = MAX_NEW_TOKENS
) -> list[Task]:
    """One free-text task of the split's prompts (rows ``{"id", "prompt", ...}``)."""
    if split not in SPLITS:
        raise DataError(f"hub:{HUB_ID}", f"field 'split': must be one of {list(SPLITS)}, got {split!r}")
    rows = hub_rows(HUB_ID, split)[:max_items]
    items = []
    for index, row in enumerate(rows):
        where = f"hub:{HUB_ID}[{split}][{index}] ({row.get('id', '?')})"
        if not isinstance(row.get("prompt"), str) or not row["prompt"].strip():
            raise DataError(where, "field 'prompt': missing or empty")
        items.append(Item(where, prompt=[{"role": "user", "content": row["prompt"]}]))
    if not items:
        raise DataError(f"hub:{HUB_ID}[{split}]", "no rows")
    return [
        Task(
            name=f"noveltybench_{split}",
            suite="benchmarks",
            split="heldout",
            kind="freetext",
            path=Path(f"hub:{HUB_ID}"),
            items=items,
            description=f"NoveltyBench {split} prompts ({HUB_ID}), {SAMPLES} generations each.",
            samples=SAMPLES,
            max_new_tokens=max_new_tokens,
            stop=[],
        )
    ]
