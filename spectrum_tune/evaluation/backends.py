"""Where samples and log-probs come from: the one small interface sample and score mode call.

A :class:`Backend` draws ``n`` continuations of a prompt and gives the exact log-probabilities of
given token continuations (or refuses, with a one-line reason: :class:`ScoringUnavailable`).
:class:`~spectrum_tune.evaluation.local.LocalBackend` is the model loaded in this process
(``generate`` / the float32 scorer);
:class:`~spectrum_tune.evaluation.served.ServedBackend` is an OpenAI-compatible endpoint. The
runner picks one; metric and report code only sees the strings and numbers they return. The task
functions (``sample_task``, ``score_task``, ``steer_task``) take either a backend or, as before, a
model and its tokenizer (then they call the local functions directly). This module holds only the
interface, so the task modules can import it without a cycle.

Score mode works on token ids (the groups :func:`~spectrum_tune.evaluation.score.tokenize_for_scoring`
builds with the backend's ``tokenizer``), so both backends score the same tokens: a served model's
log-probs are the server's, of exactly the sequence the local tokenizer produced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import SpectrumError

__all__ = ["Backend", "SampleRequest", "ScoringUnavailable"]


class ScoringUnavailable(SpectrumError):
    """This backend cannot give exact log-probs (e.g. a hosted chat API); never approximated."""


@dataclass(frozen=True)
class SampleRequest:
    """``n`` continuations of one prompt with a task's settings (``seed``: the item's seed)."""

    prompt: str | list[dict[str, str]]
    n: int
    max_new_tokens: int
    stop: tuple[str, ...]
    seed: int
    temperature: float = 1.0
    top_p: float = 1.0


class Backend:
    """The interface: ``sample_many`` and ``group_logprobs`` (``tokenizer`` builds score groups)."""

    kind = "backend"
    tokenizer: Any = None

    def sample_many(
        self, requests: Sequence[SampleRequest], on_batch: Callable[[int], None] | None = None
    ) -> list[list[str]]:
        """The samples of every request, in order (``on_batch(k)`` after each k samples drawn)."""
        raise NotImplementedError

    def group_logprobs(self, groups: list[dict[str, Any]]) -> list[np.ndarray]:
        """``log p(completion_k | prompt)`` for every completion of every tokenised group (float64),
        counting the tokens whose ``completion_mask`` is 1; :class:`ScoringUnavailable` if it cannot."""
        raise NotImplementedError

    def token_logprobs(self, sequences: list[list[int]]) -> list[Any]:
        """Full-vocabulary next-token log-probs per sequence (the published in-context metrics)."""
        raise ScoringUnavailable(f"the {self.kind} backend gives no full-vocabulary log-probs")

    def describe(self) -> dict[str, Any]:
        """What results.json records about the backend (never a secret)."""
        return {"kind": self.kind}
