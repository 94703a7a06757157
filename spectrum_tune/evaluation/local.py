"""The local backend: a transformers model in this process (see :mod:`.backends`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .backends import Backend, SampleRequest
from .sample import local_draws
from .score import group_logprobs
from .steer import _token_logprobs

__all__ = ["LocalBackend", "as_backend"]


class LocalBackend(Backend):
    """A transformers model in this process: the existing sampler and float32 scorer."""

    kind = "local"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        batch_size: int = 64,
        prefix_sharing: bool = True,
        prefill_once: bool = True,
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.prefix_sharing, self.prefill_once = batch_size, prefix_sharing, prefill_once

    def sample_many(
        self, requests: Sequence[SampleRequest], on_batch: Callable[[int], None] | None = None
    ) -> list[list[str]]:
        return local_draws(
            self.model,
            self.tokenizer,
            requests,
            batch_size=self.batch_size,
            prefill_once=self.prefill_once,
            on_batch=on_batch,
        )

    def group_logprobs(self, groups: list[dict[str, Any]]) -> list[np.ndarray]:
        pad = self.tokenizer.pad_token_id
        return group_logprobs(self.model, groups, pad, self.batch_size, self.prefix_sharing)

    def token_logprobs(self, sequences: list[list[int]]) -> list[Any]:
        return _token_logprobs(self.model, sequences, self.tokenizer.pad_token_id)


def as_backend(model: Any, tokenizer: Any = None, **options: Any) -> Backend:
    """``model`` itself if it is a backend, else a :class:`LocalBackend` of ``model`` and ``tokenizer``."""
    return model if isinstance(model, Backend) else LocalBackend(model, tokenizer, **options)
