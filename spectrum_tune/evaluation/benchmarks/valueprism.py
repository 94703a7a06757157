"""ValuePrism (``allenai/ValuePrism``, config ``full``): situations with their values, rights and duties,
as overtone tasks (one answer should present the range of considerations) and as training rows.

The ``full`` config holds one row per (situation, consideration): ``situation``, ``vrd`` (``Value``,
``Right`` or ``Duty``), ``text`` (the consideration, e.g. "Right to life"), ``explanation`` (one
sentence on how it bears on the situation) and ``valence`` (``Supports``, ``Opposes`` or
``Either``). Rows are grouped by situation, in order of first appearance; each consideration
becomes one viewpoint: its explanation is the statement an NLI judge tests, ``"{vrd}: {text}"`` its
label, and its ``text`` the keyword (a crude rule; judge ValuePrism with an NLI model,
``--overtone_judge cross-encoder/nli-deberta-v3-base``). The dataset is gated on the Hub: accept its
terms and log in first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...training.data import DataError
from ..items import Item, Task
from ..overtone import Viewpoint
from .hub import hub_rows

__all__ = ["CONFIG", "HUB_ID", "load", "situation_prompt", "training_rows"]

HUB_ID = "allenai/ValuePrism"
CONFIG = "full"
SAMPLES = 10
MAX_NEW_TOKENS = 256
MIN_VIEWPOINTS = 2


def situation_prompt(situation: str) -> list[dict[str, str]]:
    """A neutral question: whether the answer weighs several considerations is what is measured."""
    return [{"role": "user", "content": f"What do you think of this: {situation.strip()}?"}]


def _situations(split: str, max_items: int | None) -> list[tuple[str, str, list[Viewpoint]]]:
    """(where, situation, viewpoints) per situation with at least two distinct considerations."""
    grouped: dict[str, tuple[str, dict[str, Viewpoint]]] = {}
    for index, row in enumerate(hub_rows(HUB_ID, split, name=CONFIG)):
        where = f"hub:{HUB_ID}[{CONFIG}][{split}][{index}]"
        for column in ("situation", "vrd", "text"):
            if not isinstance(row.get(column), str) or not row[column].strip():
                raise DataError(where, f"field '{column}': missing or empty")
        situation, text = row["situation"].strip(), row["text"].strip()
        explanation = (row.get("explanation") or "").strip()
        label = f"{row['vrd'].strip()}: {text}"
        viewpoint = Viewpoint(explanation or label, (text,), label)
        if situation not in grouped:
            if max_items is not None and len(grouped) >= max_items:
                continue  # rows of one situation may not be adjacent: keep reading the ones we have
            grouped[situation] = (where, {})
        grouped[situation][1].setdefault(viewpoint.text, viewpoint)
    kept = [(where, s, list(vs.values())) for s, (where, vs) in grouped.items() if len(vs) >= MIN_VIEWPOINTS]
    if not kept:
        where = f"hub:{HUB_ID}[{CONFIG}][{split}]"
        raise DataError(where, "no situation with two or more values/rights/duties")
    return kept


def load(
    split: str = "train", max_items: int | None = None, max_new_tokens: int = MAX_NEW_TOKENS
) -> list[Task]:
    """One overtone task: each situation's listed values, rights and duties are its viewpoints."""
    items = [
        Item(where, prompt=situation_prompt(situation), viewpoints=viewpoints)
        for where, situation, viewpoints in _situations(split, max_items)
    ]
    return [
        Task(
            name="valueprism_overtone",
            suite="benchmarks",
            split="heldout",
            kind="overtone",
            path=Path(f"hub:{HUB_ID}"),
            items=items,
            description=f"ValuePrism situations ({HUB_ID}, {CONFIG}): share of the values, rights and "
            "duties one answer presents.",
            samples=SAMPLES,
            max_new_tokens=max_new_tokens,
            stop=[],
        )
    ]


def _complete_answer(viewpoints: list[Viewpoint]) -> str:
    """A viewpoint-complete reference: names every consideration, then states each one."""
    names = "; ".join(v.label or v.text for v in viewpoints)
    statements = " ".join(v.text if v.text.endswith((".", "!", "?")) else v.text + "." for v in viewpoints)
    return f"Several considerations bear on this ({names}). {statements}"


def training_rows(split: str = "train", max_items: int | None = None) -> list[dict[str, Any]]:
    """Overtone training rows ``{prompt, references: [viewpoint-complete answer], viewpoints}``:
    ordinary SFT / spectrum rows (the loss ignores ``viewpoints``) and overtone eval items at once."""
    return [
        {
            "prompt": situation_prompt(situation),
            "references": [_complete_answer(viewpoints)],
            "viewpoints": [
                {"text": v.text, "keywords": list(v.keywords), "label": v.label} for v in viewpoints
            ],
        }
        for _, situation, viewpoints in _situations(split, max_items)
    ]
