"""Equivalence rules for group diversity: texts -> class ids (equal ids = the same answer).

An equivalence is any callable ``texts -> class ids`` (one hashable per text). Built in:
``"normalized"`` (:func:`~spectrum_tune.evaluation.metrics.normalize_answer`), ``"exact"``
(stripped text), a named rule from :data:`~spectrum_tune.rl.rewards.EQUIVALENCES` given as
``module:function`` (imported on first use), or a path to a sequence-classification model
that judges pairs (DARLING's learned equivalence classifier; :func:`classifier_equivalence`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from ..errors import SpectrumError
from ..evaluation.metrics import normalize_answer

__all__ = ["EQUIVALENCES", "Equivalence", "classifier_equivalence", "equivalence_function"]

Equivalence = Callable[[Sequence[str]], Sequence[Hashable]]
# Named rules kept elsewhere, as "module:function" (the function maps texts to class ids). The
# NoveltyBench short-answer rule belongs to the evaluation room; until it exists there, asking
# for it is a one-line error.
EQUIVALENCES: dict[str, str] = {
    "novelty": "spectrum_tune.evaluation.metrics.novelty:equivalence_classes",
}


def normalized_classes(texts: Sequence[str]) -> list[str]:
    """Class id = the normalised answer."""
    return [normalize_answer(text) for text in texts]


def exact_classes(texts: Sequence[str]) -> list[str]:
    """Class id = the text without surrounding whitespace."""
    return [text.strip() for text in texts]


def _named(name: str) -> Equivalence:
    module_name, _, attribute = EQUIVALENCES[name].partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError):
        raise SpectrumError(
            f"equivalence '{name}' needs {EQUIVALENCES[name]}, which this installation lacks"
        ) from None


def classifier_equivalence(
    model_path: str, *, threshold: float = 0.5, batch_size: int = 64, device: str | None = None
) -> Equivalence:
    """Partition texts with a pair classifier (``AutoModelForSequenceClassification``).

    Texts are taken in order; each is compared with one representative of every class found so
    far and joins the first class the classifier calls equivalent (probability >= ``threshold``),
    else it starts a new class -- DARLING's partition procedure. Probability: the sigmoid of
    the single logit for one-label models, else the softmax of label ``equivalent`` (from
    ``config.label2id``; index 1 when no such label)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not Path(model_path).exists() and "/" not in model_path:
        raise SpectrumError(f"equivalence classifier '{model_path}' is neither a directory nor a Hub id")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForSequenceClassification.from_pretrained(model_path).eval()
    if device:
        model.to(device)
    labels = {str(key).lower(): value for key, value in (model.config.label2id or {}).items()}
    positive = labels.get("equivalent", 1)

    def probability(pairs: list[tuple[str, str]]) -> list[float]:
        values: list[float] = []
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            inputs = tokenizer(
                [a for a, _ in chunk],
                [b for _, b in chunk],
                padding=True,
                truncation=True,
                return_tensors="pt",
            ).to(model.device)
            with torch.inference_mode():
                logits = model(**inputs).logits.float()
            if logits.shape[-1] == 1:
                values += torch.sigmoid(logits[:, 0]).tolist()
            else:
                values += torch.softmax(logits, dim=-1)[:, positive].tolist()
        return values

    def classes(texts: Sequence[str]) -> list[int]:
        representatives: list[str] = []
        ids: list[int] = []
        for text in texts:
            joined = None
            if representatives:
                scores = probability([(rep, text) for rep in representatives])
                joined = next((c for c, p in enumerate(scores) if p >= threshold), None)
            if joined is None:
                representatives.append(text)
                joined = len(representatives) - 1
            ids.append(joined)
        return ids

    return classes


def equivalence_function(equivalence: str | Equivalence | Any = "normalized") -> Equivalence:
    """Resolve an ``equivalence=`` option: ``"normalized"``, ``"exact"``, a name in
    :data:`EQUIVALENCES`, a callable ``texts -> class ids``, or a classifier model path."""
    if callable(equivalence):
        return equivalence
    if not isinstance(equivalence, str) or not equivalence:
        raise SpectrumError(
            "equivalence must be 'normalized', 'exact', a rule name, a callable or a model path"
        )
    if equivalence == "normalized":
        return normalized_classes
    if equivalence == "exact":
        return exact_classes
    if equivalence in EQUIVALENCES:
        return _named(equivalence)
    return classifier_equivalence(equivalence)
