"""Infinity-Chat's open-ended evaluation queries (``liweijiang/infinite-chats-eval``, 100 rows ``{"query"}``).

The queries of the "Artificial Hivemind" study (Jiang et al., 2025), as one free-text task: spread
metrics (distinct_k, Vendi, self-BLEU, ...) over the samples of each query.
"""

from __future__ import annotations

from pathlib import Path

from ...training.data import DataError
from ..items import Item, Task
from .hub import hub_rows

__all__ = ["HUB_ID", "load"]

HUB_ID = "liweijiang/infinite-chats-eval"
SAMPLES = 10
MAX_NEW_TOKENS = 512


def load(
    split: str = "train", max_items: int | None = None, max_new_tokens: int = MAX_NEW_TOKENS
) -> list[Task]:
    rows = hub_rows(HUB_ID, split)[:max_items]
    items = []
    for index, row in enumerate(rows):
        where = f"hub:{HUB_ID}[{split}][{index}]"
        if not isinstance(row.get("query"), str) or not row["query"].strip():
            raise DataError(where, "field 'query': missing or empty")
        items.append(Item(where, prompt=[{"role": "user", "content": row["query"]}]))
    if not items:
        raise DataError(f"hub:{HUB_ID}[{split}]", "no rows")
    return [
        Task(
            name="infinity_chat",
            suite="benchmarks",
            split="heldout",
            kind="freetext",
            path=Path(f"hub:{HUB_ID}"),
            items=items,
            description=f"Infinity-Chat open-ended eval queries ({HUB_ID}), {SAMPLES} generations each.",
            samples=SAMPLES,
            max_new_tokens=max_new_tokens,
            stop=[],
        )
    ]
