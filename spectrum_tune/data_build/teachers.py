"""Teachers and the judge: a loaded model, how it is prompted, and the eval's two backends on it.

Samples come from the eval's sampler (:func:`spectrum_tune.evaluation.sample.generate_samples`:
pure ancestral sampling, the prompt encoded once, the template's end-of-turn and the stop strings
end a sample); exact probabilities come from score mode
(:func:`spectrum_tune.evaluation.score.group_logprobs`: each answer's summed log-prob, its end
token included, as the trainer scores it). Nothing here copies either.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.special import logsumexp

from ..evaluation.extract import append_instruction
from ..evaluation.sample import generate_samples
from ..evaluation.score import group_logprobs
from ..models import default_device, load_model, load_tokenizer
from ..training.tokenize import tokenize_group
from .config import TeacherSpec

__all__ = ["Teacher"]

_YES = ("yes", "Yes")
_NO = ("no", "No")


class Teacher:
    """A model loaded on first use (a fully cached resume loads none), released by :meth:`close`."""

    def __init__(
        self,
        spec: TeacherSpec,
        device: str = "auto",
        plain_format: str = "{prompt}",
        instruction: str | None = None,
    ):
        self.spec = spec
        self.device = device
        self.plain_format = plain_format
        self.instruction = instruction
        self._model: Any = None
        self._tokenizer: Any = None

    def _tokenizer_only(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.spec.model, gguf_file=self.spec.gguf)
        return self._tokenizer

    def _load(self) -> tuple[Any, Any]:
        if self._model is None:
            model = load_model(self.spec.model, adapter=self.spec.adapter, gguf_file=self.spec.gguf)
            self._model = model.to(default_device(self.device)).eval()
        return self._model, self._tokenizer_only()

    def close(self) -> None:
        self._model = self._tokenizer = None
        gc.collect()

    @property
    def chat(self) -> bool:
        if self.spec.prompting != "auto":
            return self.spec.prompting == "chat"
        # the tokenizer alone says it: rendering a prompt never loads the model
        return bool(getattr(self._tokenizer_only(), "chat_template", None))

    def render(self, prompt: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
        """The prompt as this teacher sees it: the format instruction appended (as the eval's task
        files do), then chat messages, or plain text in ``plain_format``."""
        if self.instruction:
            prompt = append_instruction(prompt, self.instruction)
        if self.chat:
            return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
        text = prompt if isinstance(prompt, str) else "\n".join(str(m.get("content", "")) for m in prompt)
        return self.plain_format.replace("{prompt}", text)

    def sample(
        self,
        prompt: str | list[dict[str, Any]],
        n: int,
        *,
        seed: int,
        max_new_tokens: int,
        stop: Sequence[str],
        temperature: float,
        top_p: float,
        batch_size: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> list[str]:
        """``n`` samples of the rendered prompt (stripped; stop strings cut, as in the eval)."""
        model, tokenizer = self._load()
        samples = generate_samples(
            model,
            tokenizer,
            self.render(prompt),
            n,
            max_new_tokens=max_new_tokens,
            stop=tuple(stop),
            batch_size=batch_size,
            seed=seed,
            on_batch=on_batch,
            temperature=temperature,
            top_p=top_p,
        )
        return [sample.strip() for sample in samples]

    def logprobs(
        self, prompt: str | list[dict[str, Any]], answers: Sequence[str], batch_size: int = 64
    ) -> np.ndarray:
        """Exact ``log p(answer | prompt)`` of each answer, complete (end token included).

        A plain-text prompt not ending in whitespace gets each answer after one space, the form a
        sampled continuation of it takes (the samples were stripped).
        """
        model, tokenizer = self._load()
        rendered = self.render(prompt)
        texts = list(answers)
        if isinstance(rendered, str) and rendered and not rendered[-1].isspace():
            texts = [" " + text for text in texts]
        row = {"prompt": rendered, "references": texts, "weights": [1.0 / len(texts)] * len(texts)}
        group = tokenize_group(row, tokenizer, max_length=None)
        return group_logprobs(model, [group], tokenizer.pad_token_id, batch_size)[0]

    def p_yes(self, question: str, batch_size: int = 64) -> float:
        """P(yes) / (P(yes) + P(no)) of the judge's complete one-word reply (either case)."""
        s = self.logprobs(question, [*_YES, *_NO], batch_size)
        yes, no = logsumexp(s[: len(_YES)]), logsumexp(s[len(_YES) :])
        return float(np.exp(yes - np.logaddexp(yes, no)))
