"""The eval harness's :class:`Item` and :class:`Task`: what a task file loads into.

They live apart from :mod:`.tasks` (which loads task files, suites and public benchmarks) so that
the benchmark loaders in :mod:`.benchmarks`, which build items and tasks, do not import the module
that imports them: no import circle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..training.data import SOURCE_COLUMN
from .metrics import normalize_answer
from .overtone import Viewpoint
from .published import published_text
from .validators import Validator

__all__ = ["DEFAULT_MAX_NEW_TOKENS", "DEFAULT_SAMPLES", "DEFAULT_STOP", "Item", "Task"]

DEFAULT_SAMPLES = 100
DEFAULT_MAX_NEW_TOKENS = 16
DEFAULT_STOP = ("\n",)


@dataclass
class Item:
    """One context of a task: a prompt with its valid set, or a steer item."""

    where: str
    prompt: str | list[dict[str, str]] | None = None
    references: list[str] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    validator: Validator | None = None
    description: str | None = None
    examples: list[str] = field(default_factory=list)
    heldout: list[str] = field(default_factory=list)
    k: list[int] = field(default_factory=list)
    viewpoints: list[Viewpoint] = field(default_factory=list)  # overtone items (.overtone)

    @property
    def is_steer(self) -> bool:
        return bool(self.heldout)

    @property
    def is_closed(self) -> bool:
        """One correct answer: accuracy applies."""
        return len(self.references) == 1 and self.validator is None

    @property
    def is_freetext(self) -> bool:
        return not self.is_steer and not self.references and self.validator is None

    @property
    def row(self) -> dict[str, Any]:
        """The item as a validated training row (for :func:`spectrum_tune.training.data.tokenize_group`)."""
        return {
            "prompt": self.prompt,
            "references": self.references,
            "weights": self.weights,
            SOURCE_COLUMN: self.where,
        }

    def validity_mask(self, samples: Sequence[str]) -> np.ndarray:
        """Boolean mask of valid samples: a listed reference or accepted by the validator."""
        listed = {normalize_answer(r) for r in self.references}
        return np.array(
            [
                normalize_answer(s) in listed or (self.validator is not None and self.validator(s))
                for s in samples
            ],
            dtype=bool,
        )

    def published_mask(self, samples: Sequence[str]) -> np.ndarray:
        """Validity as the published reference judges it: the stripped text exactly in the list as
        given, or the validator's :meth:`~spectrum_tune.evaluation.validators.Validator.published` check."""
        listed = set(self.references)
        texts = [published_text(s) for s in samples]
        return np.array(
            [t in listed or (self.validator is not None and self.validator.published(t)) for t in texts],
            dtype=bool,
        )


@dataclass
class Task:
    """A named set of items from one task file, with its generation settings."""

    name: str
    suite: str
    split: str
    kind: str
    path: Path
    items: list[Item]
    description: str = ""
    samples: int = DEFAULT_SAMPLES
    max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS
    stop: list[str] = field(default_factory=lambda: list(DEFAULT_STOP))
    temperature: float | None = None  # sample mode; None: the run's --temperature (default 1.0)
    top_p: float | None = None  # sample mode; None: the run's --top_p (default 1.0)
    published: bool = False
    extract: str | None = None
    extract_pattern: re.Pattern | None = None
