"""NoveltyBench (Zhang et al., 2025): equivalence classes of generations, ``distinct_k`` and ``utility_k``.

Equivalence follows novelty-bench's ``partition.py``:

* **short answers** (both at most 5 whitespace words after strip + lowercase): equivalent when the
  shared words, counted once each, are at least half of the longer answer's words
  (``2 * |common| >= max_len``). So "New York" ~ "New Jersey" ~ "York", while "Ohio." and
  "ohio" differ (punctuation is part of the word);
* **long answers**: a pairwise sequence-classification model reads ``[CLS] a [SEP] b [SEP]``
  (each side cut at 128 tokens, token types 0 / 1) and calls them equivalent when
  ``softmax(logits)[1] > threshold``; NoveltyBench's model is
  ``yimingzhang/deberta-v3-large-generation-similarity`` (tokenizer ``microsoft/deberta-v3-large``)
  with threshold 0.102. Without a classifier, long answers are equivalent only when equal after
  strip (exact match; the classifier is what makes paraphrases one class).

The partition is greedy: each text not yet placed opens a class and pulls in every later
unplaced text equivalent to it (compared with the class's first member). ``distinct`` is the
number of classes.

``utility_k``: a reward model rates each generation (raw reward -> 1..10 by NoveltyBench's
thresholds); only the first member of each class earns its rating (repeats earn 0), and the
ratings are averaged with weights ``patience ** i`` (patience 0.8).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ...models import default_device

__all__ = [
    "DEFAULT_CLASSIFIER",
    "DEFAULT_CLASSIFIER_TOKENIZER",
    "DEFAULT_PATIENCE",
    "DEFAULT_REWARD_MODEL",
    "DEFAULT_THRESHOLD",
    "PairClassifier",
    "RewardModel",
    "distinct",
    "equivalence_classes",
    "rating_from_reward",
    "short_answer_equivalent",
    "utility",
]

DEFAULT_CLASSIFIER = "yimingzhang/deberta-v3-large-generation-similarity"
DEFAULT_CLASSIFIER_TOKENIZER = "microsoft/deberta-v3-large"
DEFAULT_THRESHOLD = 0.102
DEFAULT_REWARD_MODEL = "Skywork/Skywork-Reward-Gemma-2-27B-v0.2"
DEFAULT_PATIENCE = 0.8
SHORT_MAX_WORDS = 5
CLASSIFIER_MAX_TOKENS = 128
# NoveltyBench's cut points from a raw Skywork reward to a 1..10 rating
REWARD_THRESHOLDS = (-7.71875, -6.28125, -6.0, -5.71875, -5.5, -5.0, -4.375, -3.4375, -2.046875)


def short_answer_equivalent(a: str, b: str) -> bool | None:
    """NoveltyBench's word rule when both texts have <= 5 words, else ``None`` (undecided)."""
    words_a, words_b = a.strip().lower().split(), b.strip().lower().split()
    longest = max(len(words_a), len(words_b))
    if longest > SHORT_MAX_WORDS:
        return None
    return 2 * len(set(words_a) & set(words_b)) >= longest


class PairClassifier:
    """A pairwise equivalence model: ``classifier(a, b)`` is the probability that a and b are equivalent.

    ``model`` is any ``AutoModelForSequenceClassification`` path (or loaded model) with two labels;
    the tokenizer comes from ``tokenizer`` (path or object), else from the model's directory, else
    NoveltyBench's (``microsoft/deberta-v3-large``).
    """

    def __init__(self, model: Any = DEFAULT_CLASSIFIER, tokenizer: Any = None, device: str | None = None):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if isinstance(model, str):
            model = AutoModelForSequenceClassification.from_pretrained(model)
        if tokenizer is None or isinstance(tokenizer, str):
            source = tokenizer or getattr(model, "name_or_path", None)
            try:
                tokenizer = AutoTokenizer.from_pretrained(source)
            except (OSError, ValueError, TypeError):
                tokenizer = AutoTokenizer.from_pretrained(DEFAULT_CLASSIFIER_TOKENIZER)
        self.device = default_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer

    def __call__(self, a: str, b: str) -> float:
        import torch

        tok = self.tokenizer
        ids = [tok.cls_token_id]
        for text in (a, b):
            ids += tok.encode(
                text, truncation=True, max_length=CLASSIFIER_MAX_TOKENS, add_special_tokens=False
            )
            ids.append(tok.sep_token_id)
        first_segment = ids.index(tok.sep_token_id) + 1
        types = [0] * first_segment + [1] * (len(ids) - first_segment)
        with torch.inference_mode():
            logits = self.model(
                input_ids=torch.tensor([ids], device=self.device),
                token_type_ids=torch.tensor([types], device=self.device),
            ).logits
        return float(logits.softmax(-1)[0, 1])


def _equivalence_test(
    classifier: PairClassifier | Callable[[str, str], float] | str | None, threshold: float | None
) -> Callable[[str, str], bool]:
    if classifier is None:
        if threshold is not None:
            raise ValueError("threshold needs a classifier")
        return lambda a, b: a.strip() == b.strip()
    if isinstance(classifier, str):
        classifier = PairClassifier(DEFAULT_CLASSIFIER if classifier == "default" else classifier)
    cut = DEFAULT_THRESHOLD if threshold is None else threshold
    return lambda a, b: classifier(a, b) > cut


def equivalence_classes(
    texts: Sequence[str],
    *,
    classifier: PairClassifier | Callable[[str, str], float] | str | None = None,
    threshold: float | None = None,
) -> list[int]:
    """Class id (0, 1, ...) of every text under NoveltyBench's equivalence (module docstring).

    ``classifier``: ``None`` (long answers by exact match), ``"default"`` (NoveltyBench's model),
    a sequence-classification model path, a :class:`PairClassifier`, or any ``(a, b) -> prob``
    callable. ``threshold`` defaults to NoveltyBench's 0.102. Ids are in order of first
    appearance, so ``max(ids) + 1`` is the number of classes.
    """
    long_equivalent = _equivalence_test(classifier, threshold)

    def equivalent(a: str, b: str) -> bool:
        short = short_answer_equivalent(a, b)
        return short if short is not None else long_equivalent(a, b)

    partition = [-1] * len(texts)
    n_classes = 0
    for i, text in enumerate(texts):
        if partition[i] >= 0:
            continue
        partition[i] = n_classes
        for j in range(i + 1, len(texts)):
            if partition[j] == -1 and equivalent(text, texts[j]):
                partition[j] = n_classes
        n_classes += 1
    return partition


def distinct(texts: Sequence[str], k: int | None = None, **kwargs: Any) -> int:
    """NoveltyBench ``distinct``: the number of equivalence classes among the first ``k`` texts."""
    head = list(texts if k is None else texts[:k])
    return max(equivalence_classes(head, **kwargs), default=-1) + 1


def rating_from_reward(reward: float) -> int:
    """NoveltyBench's 1..10 rating of a raw reward."""
    return bisect.bisect_left(REWARD_THRESHOLDS, reward) + 1


def utility(ratings: Sequence[float], partition: Sequence[int], patience: float = DEFAULT_PATIENCE) -> float:
    """NoveltyBench ``utility``: ``patience``-discounted mean rating, repeats of a class earning 0."""
    if len(ratings) != len(partition):
        raise ValueError(f"{len(ratings)} ratings for {len(partition)} partition entries")
    if not ratings:
        return float("nan")
    earned, seen = [], 0
    for rating, cls in zip(ratings, partition, strict=True):
        if cls == seen:  # the first member of a new class (ids are in order of appearance)
            earned.append(rating)
            seen += 1
        else:
            earned.append(0)
    return float(np.average(earned, weights=patience ** np.arange(len(earned))))


class RewardModel:
    """A sequence-classification reward model (one logit) rating (prompt, response) chats 1..10."""

    def __init__(self, model: Any = DEFAULT_REWARD_MODEL, tokenizer: Any = None, device: str | None = None):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if isinstance(model, str):
            model = AutoModelForSequenceClassification.from_pretrained(model, num_labels=1)
        if tokenizer is None or isinstance(tokenizer, str):
            tokenizer = AutoTokenizer.from_pretrained(tokenizer or model.name_or_path)
        self.device = default_device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer

    def rewards(self, prompt: str, responses: Sequence[str]) -> list[float]:
        """Raw rewards (logit 0) of each response to ``prompt``, rendered with the chat template."""
        import torch

        rewards = []
        for response in responses:  # one at a time: no padding side to get wrong
            chat = [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]
            ids = self.tokenizer.apply_chat_template(
                chat, tokenize=True, return_dict=True, return_tensors="pt"
            )
            with torch.inference_mode():
                logits = self.model(**{k: v.to(self.device) for k, v in ids.items()}).logits
            rewards.append(float(logits[0, 0]))
        return rewards

    def ratings(self, prompt: str, responses: Sequence[str]) -> list[int]:
        return [rating_from_reward(r) for r in self.rewards(prompt, responses)]
