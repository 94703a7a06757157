"""From samples to weighted references: extraction, equivalence classes, validity, weights.

Pure functions (no model): the answers are read with the eval's extraction
(:func:`spectrum_tune.evaluation.extract.extract_answer`), grouped by the eval's normalisation
(:func:`spectrum_tune.text.normalize_answer`; optionally merged further by NoveltyBench's
equivalence, :func:`spectrum_tune.evaluation.metrics.novelty.equivalence_classes`), checked with
the eval's validity (:meth:`spectrum_tune.evaluation.tasks.Item.validity_mask`) and by agreement,
and weighted. A rejected class keeps its reasons: it is reported, never silently dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..evaluation.extract import extract_answer
from ..evaluation.metrics import novelty
from ..evaluation.tasks import Item
from ..text import normalize_answer
from .inputs import PromptRow

__all__ = ["SEED", "AnswerClass", "answer_classes", "check_validity", "class_weights"]

SEED = "seed"
"""The provenance label of an SFT row's own answer."""


@dataclass
class AnswerClass:
    """One answer (an equivalence class of spellings) with who produced it and why it was rejected."""

    key: str
    spellings: Counter = field(default_factory=Counter)
    counts: dict[str, int] = field(default_factory=dict)  # teacher label (or "seed") -> samples
    reasons: list[str] = field(default_factory=list)
    p_yes: float | None = None

    @property
    def text(self) -> str:
        """The reference text: the class's most common spelling (first seen at a tie)."""
        return self.spellings.most_common(1)[0][0]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def teachers(self) -> list[str]:
        return [label for label, count in self.counts.items() if count and label != SEED]

    @property
    def kept(self) -> bool:
        return not self.reasons

    def merge(self, other: AnswerClass) -> None:
        self.spellings.update(other.spellings)
        for label, count in other.counts.items():
            self.counts[label] = self.counts.get(label, 0) + count


def _answer(sample: str, mode: str, item: Item, pattern: re.Pattern | None) -> str | None:
    answer = sample if mode == "none" else extract_answer(sample, mode, item, pattern)
    return answer.strip() if answer is not None and normalize_answer(answer) else None


def class_key(answer: str) -> str:
    """The eval's normalised answer. It keeps only the first line, so multi-line answers sharing a
    first line are one class: the loader refuses references that the eval counts as one answer."""
    return normalize_answer(answer)


def answer_classes(
    samples: Mapping[str, Sequence[str]],
    row: PromptRow,
    *,
    extract: str = "none",
    pattern: re.Pattern | None = None,
    classifier: Any = None,
    threshold: float | None = None,
) -> tuple[list[AnswerClass], dict[str, int]]:
    """Classes of the teachers' answers (and the row's seeds), most frequent first, and per source
    the number of samples nothing could be read from."""
    item = row.item
    classes: dict[str, AnswerClass] = {}
    unreadable: dict[str, int] = {}
    sources = [*samples.items(), (SEED, [s for s, n in row.seeds.items() for _ in range(n)])]
    for label, texts in sources:
        for text in texts:
            answer = _answer(text, extract, item, pattern)
            if answer is None:
                unreadable[label] = unreadable.get(label, 0) + 1
                continue
            key = class_key(answer)
            entry = classes.setdefault(key, AnswerClass(key))
            entry.spellings[answer] += 1
            entry.counts[label] = entry.counts.get(label, 0) + 1
    ordered = sorted(classes.values(), key=lambda c: -c.total)  # stable: first seen first at a tie
    if classifier is not None and len(ordered) > 1:
        texts = [c.text for c in ordered]
        ids = novelty.equivalence_classes(texts, classifier=classifier, threshold=threshold)
        merged: dict[int, AnswerClass] = {}
        for class_id, entry in zip(ids, ordered, strict=True):
            if class_id in merged:
                merged[class_id].merge(entry)
            else:
                merged[class_id] = entry
        ordered = sorted(merged.values(), key=lambda c: -c.total)
    return ordered, unreadable


def check_validity(
    classes: Sequence[AnswerClass],
    row: PromptRow,
    *,
    valid_set_filters: bool = False,
    agreement: bool = False,
    min_count: int = 2,
    min_teachers: int = 2,
) -> None:
    """Add rejection reasons: the row's validator (and known valid set with ``valid_set_filters``),
    as the eval judges validity; agreement (seen >= ``min_count`` times or by >= ``min_teachers``
    teachers; an SFT seed needs none)."""
    listed = row.known if valid_set_filters else []
    if row.validator is not None or listed:
        item = Item(row.where, prompt=row.prompt, references=listed, validator=row.validator)
        mask = item.validity_mask([c.text for c in classes])
        for entry, ok in zip(classes, mask, strict=True):
            if not ok:
                entry.reasons.append("invalid (validator)" if not listed else "invalid (valid set/validator)")
    if agreement:
        for entry in classes:
            if SEED not in entry.counts and entry.total < min_count and len(entry.teachers) < min_teachers:
                entry.reasons.append(f"agreement (seen {entry.total}x by {len(entry.teachers)} teacher(s))")


def class_weights(
    kept: Sequence[AnswerClass],
    mode: str,
    *,
    teacher_probs: np.ndarray | None = None,
    temper: float = 1.0,
    max_k: int | None = None,
) -> tuple[list[AnswerClass], list[float], list[AnswerClass]]:
    """``(classes, weights, cut)``: target weights of the kept classes (``counts``: samples;
    ``teacher``: ``teacher_probs``, the teachers' exact probabilities renormalised over the kept
    classes; ``uniform``), tempered as ``w^(1/T)``, cut to the ``max_k`` heaviest (the rest returned)."""
    if mode == "counts":
        raw = np.array([c.total for c in kept], dtype=float)
    elif mode == "uniform":
        raw = np.ones(len(kept))
    elif mode == "teacher":
        if teacher_probs is None or len(teacher_probs) != len(kept):
            raise ValueError("teacher weights need one probability per kept class")
        raw = np.asarray(teacher_probs, dtype=float)
    else:
        raise ValueError(f"unknown weight mode '{mode}'")
    raw = raw / raw.sum()
    if temper != 1.0:
        # in log space: a tiny exact probability raised to 1/T must not underflow to zero first
        logs = np.log(np.clip(raw, 1e-300, None)) / temper
        raw = np.exp(logs - logs.max())
        raw = raw / raw.sum()
    order = sorted(range(len(kept)), key=lambda i: -raw[i])  # stable: ties keep class order
    keep = sorted(order[:max_k]) if max_k is not None else list(range(len(kept)))
    cut = [kept[i] for i in range(len(kept)) if i not in set(keep)]
    weights = raw[keep] / raw[keep].sum()
    return [kept[i] for i in keep], [float(w) for w in weights], cut
