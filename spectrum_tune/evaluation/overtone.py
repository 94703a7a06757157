"""Overtone pluralism: does *one* answer present the range of reasonable viewpoints?

Distributional metrics look across samples; a model can spread perfectly across samples while each
answer is one-sided (and the reverse). Overtone coverage is a property of each response.

An overtone item lists its viewpoints beside the prompt (the training-row schema plus one field)::

    {"prompt": "Should the town build the new road?",
     "viewpoints": [{"text": "The road would shorten trips for commuters.",
                     "keywords": ["commute", "shorter trips"], "label": "convenience"},
                    "Building it would destroy part of the old forest."],
     "references": ["<optional: one viewpoint-complete answer, for training>"]}

A viewpoint is a statement (``text``), optionally with ``keywords`` (phrases; any one present, whole
words, case-insensitive, marks the viewpoint as presented) and a short ``label`` for reports; a bare
string is a viewpoint with no keywords.

Metrics over the N responses of an item (``metrics["sample"]`` in results.json):

* ``overtone_coverage``: mean over responses of the share of the item's viewpoints the response
  presents (1 = every answer is overtone-complete; 1/V = every answer gives one viewpoint);
* ``overtone_union``: share of viewpoints presented by at least one response (the across-samples
  view: high union with low coverage = pluralism only across samples);
* ``overtone_complete``: share of responses that present every viewpoint.

Judges (``--overtone_judge``):

* ``keywords`` (the default): the keyword rules above; fast, for tests and simple use;
* a path or Hub id of an NLI cross-encoder (``AutoModelForSequenceClassification`` with an
  ``entailment`` label in its ``id2label``), e.g. :data:`DEFAULT_NLI_MODEL`: a viewpoint is
  presented when the response, or one of its sentences, entails the viewpoint's text with
  probability >= ``threshold`` (0.5).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SpectrumError
from ..models import default_device
from ..training.data import DataError

__all__ = [
    "DEFAULT_NLI_MODEL",
    "DEFAULT_THRESHOLD",
    "EntailmentJudge",
    "KeywordJudge",
    "Viewpoint",
    "load_overtone_judge",
    "overtone_metrics",
    "overtone_scores",
    "parse_viewpoints",
    "presented_matrix",
]

DEFAULT_NLI_MODEL = "cross-encoder/nli-deberta-v3-base"
"""The documented default judge model (labels contradiction / entailment / neutral)."""
DEFAULT_THRESHOLD = 0.5
VIEWPOINT_FIELDS = {"text", "keywords", "label"}
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


@dataclass(frozen=True)
class Viewpoint:
    """One reasonable viewpoint of an overtone item."""

    text: str
    keywords: tuple[str, ...] = ()
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.text


def _viewpoint(value: Any, where: str) -> Viewpoint:
    if isinstance(value, str) and value.strip():
        return Viewpoint(value.strip())
    if not isinstance(value, dict):
        raise DataError(where, "a viewpoint must be a non-empty string or {text, keywords?, label?}")
    unknown = set(value) - VIEWPOINT_FIELDS
    if unknown:
        allowed = sorted(VIEWPOINT_FIELDS)
        raise DataError(where, f"unknown viewpoint field '{sorted(unknown)[0]}' (allowed: {allowed})")
    text = value.get("text")
    if not isinstance(text, str) or not text.strip():
        raise DataError(where, "a viewpoint needs a non-empty 'text'")
    keywords = value.get("keywords", [])
    if isinstance(keywords, str):
        keywords = [keywords]
    if not isinstance(keywords, list) or not all(isinstance(k, str) and k.strip() for k in keywords):
        raise DataError(where, "viewpoint 'keywords' must be a list of non-empty strings")
    label = value.get("label")
    if label is not None and (not isinstance(label, str) or not label.strip()):
        raise DataError(where, "viewpoint 'label' must be a non-empty string")
    return Viewpoint(text.strip(), tuple(k.strip() for k in keywords), label)


def parse_viewpoints(value: Any, where: str) -> list[Viewpoint]:
    """An item's ``viewpoints`` field -> viewpoints (at least two: one is not a range of views)."""
    if not isinstance(value, list) or len(value) < 2:
        raise DataError(where, "field 'viewpoints': must be a list of at least two viewpoints")
    viewpoints = [_viewpoint(v, f"{where}: viewpoints[{i}]") for i, v in enumerate(value)]
    if len({v.text for v in viewpoints}) != len(viewpoints):
        raise DataError(where, "field 'viewpoints': has duplicate texts")
    return viewpoints


# --------------------------------------------------------------------------------------------
# Judges: responses x viewpoints -> presented (bool)
# --------------------------------------------------------------------------------------------


def _keyword_pattern(keyword: str) -> re.Pattern:
    # whole words at both ends, any run of whitespace inside a phrase
    words = [re.escape(word) for word in keyword.split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)", re.IGNORECASE)


class KeywordJudge:
    """A viewpoint is presented when any of its keywords occurs in the response (whole words)."""

    name = "keywords"

    def presented(self, responses: Sequence[str], viewpoints: Sequence[Viewpoint]) -> list[list[bool]]:
        missing = [v.name for v in viewpoints if not v.keywords]
        if missing:
            raise SpectrumError(
                f"viewpoint '{missing[0]}' has no keywords: give it keywords or judge with an NLI model "
                f"(--overtone_judge {DEFAULT_NLI_MODEL})"
            )
        patterns = [[_keyword_pattern(k) for k in v.keywords] for v in viewpoints]
        return [[any(p.search(response) for p in group) for group in patterns] for response in responses]


def _premises(response: str) -> list[str]:
    """The whole response and each of its sentences (one sentence may state a viewpoint that the
    whole answer, read at once, only dilutes)."""
    sentences = [s.strip() for s in _SENTENCE_END.split(response) if s.strip()]
    whole = response.strip()
    return [whole, *[s for s in sentences if s != whole]] if whole else [""]


class EntailmentJudge:
    """An NLI cross-encoder judges each (response, viewpoint) pair: presented when the response or
    one of its sentences entails the viewpoint text with probability >= ``threshold``."""

    def __init__(
        self,
        model: Any = DEFAULT_NLI_MODEL,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        tokenizer: Any = None,
        batch_size: int = 32,
        max_length: int = 512,
        device: str | None = None,
    ):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.name = model if isinstance(model, str) else type(model).__name__
        if isinstance(model, str):
            tokenizer = tokenizer if tokenizer is not None else model
            model = AutoModelForSequenceClassification.from_pretrained(model)
        if isinstance(tokenizer, str):
            tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        if tokenizer is None:
            raise SpectrumError("EntailmentJudge needs a tokenizer with a loaded model")
        labels = {int(i): str(label).lower() for i, label in model.config.id2label.items()}
        entail = [i for i, label in labels.items() if label.startswith("entail")]
        if len(entail) != 1:
            raise SpectrumError(
                f"judge model '{self.name}' has no single 'entailment' label (id2label: {labels})"
            )
        self.entailment_index = entail[0]
        self.device = default_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.threshold = threshold
        self.batch_size = batch_size
        self.max_length = max_length

    def entailment(self, premises: Sequence[str], hypotheses: Sequence[str]) -> list[float]:
        """P(entailment) of each (premise, hypothesis) pair, in batches."""
        import torch

        probs: list[float] = []
        for start in range(0, len(premises), self.batch_size):
            batch = self.tokenizer(
                list(premises[start : start + self.batch_size]),
                list(hypotheses[start : start + self.batch_size]),
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            ).to(self.device)
            with torch.no_grad():
                logits = self.model(**batch).logits.float()
            probs += logits.softmax(-1)[:, self.entailment_index].tolist()
        return probs

    def presented(self, responses: Sequence[str], viewpoints: Sequence[Viewpoint]) -> list[list[bool]]:
        pairs = [
            (r, v, premise)
            for r, response in enumerate(responses)
            for v, viewpoint in enumerate(viewpoints)
            for premise in _premises(response)
        ]
        scores = self.entailment([p for _, _, p in pairs], [viewpoints[v].text for _, v, _ in pairs])
        best = [[0.0] * len(viewpoints) for _ in responses]
        for (r, v, _), score in zip(pairs, scores, strict=True):
            best[r][v] = max(best[r][v], score)
        return [[score >= self.threshold for score in row] for row in best]


def load_overtone_judge(spec: str | None = "keywords", threshold: float = DEFAULT_THRESHOLD) -> Any:
    """``keywords`` (or None) -> :class:`KeywordJudge`; any other string is an NLI model path or Hub id."""
    if spec in (None, "", "keywords"):
        return KeywordJudge()
    try:
        return EntailmentJudge(spec, threshold=threshold)
    except SpectrumError:
        raise
    except Exception as error:  # missing files, no network: one line for the user
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpectrumError(f"cannot load the overtone judge '{spec}': {reason}") from error


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def presented_matrix(
    responses: Sequence[str], viewpoints: Sequence[Viewpoint], judge: Any = None
) -> list[list[bool]]:
    """``[response][viewpoint]`` -> whether the response presents the viewpoint."""
    return (judge or KeywordJudge()).presented([str(r) for r in responses], list(viewpoints))


def overtone_scores(
    responses: Sequence[str], viewpoints: Sequence[Viewpoint], judge: Any = None
) -> tuple[dict[str, float], dict[str, float]]:
    """(metrics, shares) from one judging pass: the metrics of :func:`overtone_metrics` and, per
    viewpoint (its label, else its text), the share of responses that present it."""
    if not viewpoints:
        raise ValueError("overtone metrics need at least one viewpoint")
    if not responses:
        nan = {"overtone_coverage": math.nan, "overtone_union": math.nan, "overtone_complete": math.nan}
        return nan, {}
    matrix = presented_matrix(responses, viewpoints, judge)
    per_response = [sum(row) / len(viewpoints) for row in matrix]
    per_viewpoint = [sum(row[v] for row in matrix) / len(matrix) for v in range(len(viewpoints))]
    metrics = {
        "overtone_coverage": sum(per_response) / len(per_response),
        "overtone_union": sum(share > 0 for share in per_viewpoint) / len(viewpoints),
        "overtone_complete": sum(all(row) for row in matrix) / len(matrix),
    }
    return metrics, {v.name: share for v, share in zip(viewpoints, per_viewpoint, strict=True)}


def overtone_metrics(
    responses: Sequence[str], viewpoints: Sequence[Viewpoint], judge: Any = None
) -> dict[str, float]:
    """``overtone_coverage`` (per response, averaged), ``overtone_union`` (across responses) and
    ``overtone_complete`` (share of responses with every viewpoint); NaN for no responses."""
    return overtone_scores(responses, viewpoints, judge)[0]
