"""Reinforcement learning as a pretraining objective (RLP): the information-gain reward of a thought.

The model writes a thought after a prefix of ordinary text; the reward is how much the thought makes
the real continuation more likely than a no-thought baseline does::

    r = log p_theta(x | context, thought) - log p_baseline(x | context)

``x`` is the continuation (a dataset column, ``continuation`` by default), ``context`` the prompt
(a text prefix) and ``thought`` the completion GRPO sampled. A thought is rewarded only when it
helps predict the text that really follows; a thought that says nothing useful scores about the
policy's own no-thought gain over the baseline, the same for every thought of the group, so GRPO's
group-relative advantage leaves it at zero.

Usable by ``trl.GRPOTrainer`` unchanged::

    reward = InformationGainReward(baseline="ema", ema_decay=0.999)
    trainer = GRPOTrainer(model=..., reward_funcs=[reward], callbacks=[reward.callback],
                          train_dataset=rows_with_prompt_and_continuation, ...)

The callback hands the reward the trainer's model and tokenizer at ``on_train_begin`` and, for the
EMA baseline, moves the baseline towards the policy after every optimizer step
(``baseline <- decay * baseline + (1 - decay) * policy``, trainable weights only, as the others never
change). ``baseline="frozen"`` keeps the weights the run started from (a copy; no update). Either
costs one extra copy of the model in memory. Under GRPO the baseline term is the same for every
thought of a group (same prefix, same continuation), so it cancels in the group-relative advantage:
it makes the logged reward an information gain (> 0: the thought helps) and matters only where rewards
are compared across groups (``scale_rewards="batch"``). Both log-probabilities are exact, computed without
gradient (the reward is a number; GRPO's gradient flows through the thought's log-probability).

Token ids: the prompt is tokenised as GRPOTrainer tokenises it (``tokenizer(prompt)``), the thought
is the sampled ``completion_ids`` (end-of-sequence and padding removed), the continuation is
tokenised on its own (no special tokens), so both terms score the very same continuation tokens.
``thought_suffix`` (e.g. ``"\\n"``) is inserted between the thought and the continuation; a prompt
that ends with ``thought_open`` (e.g. ``" Thought:"``) is scored by the baseline without it.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ..errors import SpectrumError

__all__ = [
    "BASELINES",
    "InformationGainCallback",
    "InformationGainReward",
    "continuation_logprobs",
    "information_gain_reward",
    "text_rows",
]

BASELINES = ("ema", "frozen")


def continuation_logprobs(
    model: Any,
    contexts: Sequence[Sequence[int]],
    continuations: Sequence[Sequence[int]],
    pad_id: int = 0,
    batch_size: int = 16,
) -> list[list[float]]:
    """Per-token log p(continuation token | context, earlier continuation tokens) for each pair,
    from right-padded batches (no gradient; the model's mode is left as found)."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[list[float]] = []
    try:
        for start in range(0, len(contexts), batch_size):
            rows = [
                list(c) + list(x)
                for c, x in zip(
                    contexts[start : start + batch_size],
                    continuations[start : start + batch_size],
                    strict=True,
                )
            ]
            width = max(map(len, rows))
            ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            for i, row in enumerate(rows):
                ids[i, : len(row)] = torch.tensor(row)
                mask[i, : len(row)] = 1
            with torch.no_grad():
                logits = model(
                    input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False
                ).logits
            logprobs = logits.float().log_softmax(-1)
            for i, (context, continuation) in enumerate(
                zip(
                    contexts[start : start + batch_size],
                    continuations[start : start + batch_size],
                    strict=True,
                )
            ):
                # the token at position p is predicted by the logits at p - 1
                first = len(context)
                positions = torch.arange(first, first + len(continuation), device=logprobs.device)
                targets = torch.tensor(list(continuation), device=logprobs.device)
                out.append(logprobs[i, positions - 1, targets].tolist())
    finally:
        model.train(was_training)
    return out


class InformationGainReward:
    """``r = log p_theta(x | context, thought) - log p_baseline(x | context)`` as a GRPO reward.

    ``model`` / ``tokenizer`` may be given here or are attached by :attr:`callback` when training
    starts. ``reduction``: ``sum`` (the log-probability of the whole continuation, the formula
    above) or ``mean`` (per continuation token).
    """

    __name__ = "information_gain"

    def __init__(
        self,
        model: Any = None,
        tokenizer: Any = None,
        *,
        baseline: str = "ema",
        ema_decay: float = 0.999,
        continuation_column: str = "continuation",
        thought_open: str = "",
        thought_suffix: str = "",
        reduction: str = "sum",
        batch_size: int = 16,
    ):
        if baseline not in BASELINES:
            raise SpectrumError(
                f"information gain baseline must be one of {', '.join(BASELINES)}, got '{baseline}'"
            )
        if not 0.0 <= ema_decay <= 1.0:
            raise SpectrumError(f"ema_decay must be in [0, 1], got {ema_decay}")
        if reduction not in ("sum", "mean"):
            raise SpectrumError(f"information gain reduction must be sum or mean, got '{reduction}'")
        self.baseline_kind, self.ema_decay, self.reduction = baseline, ema_decay, reduction
        self.continuation_column, self.thought_open, self.thought_suffix = (
            continuation_column,
            thought_open,
            thought_suffix,
        )
        self.batch_size = batch_size
        self.model = self.tokenizer = self.baseline = None
        if model is not None:
            self.attach(model, tokenizer)

    @property
    def callback(self) -> InformationGainCallback:
        """The TrainerCallback that attaches the trainer's model and keeps the EMA baseline."""
        return InformationGainCallback(self)

    def attach(self, model: Any, tokenizer: Any) -> None:
        """Score with ``model`` and start the baseline as a frozen copy of it (no gradient)."""
        if tokenizer is None:
            raise SpectrumError("the information gain reward needs the tokenizer of the model")
        self.model, self.tokenizer = model, tokenizer
        self.baseline = copy.deepcopy(model).eval()
        self.baseline.requires_grad_(False)

    def update_baseline(self) -> None:
        """One EMA step of the baseline towards the policy (trainable weights only); no-op if frozen."""
        if self.baseline_kind != "ema" or self.baseline is None:
            return
        import torch

        with torch.no_grad():
            for (_, ema), (_, live) in zip(
                self.baseline.named_parameters(), self.model.named_parameters(), strict=True
            ):
                if live.requires_grad:
                    ema.lerp_(live.detach().to(ema.dtype), 1.0 - self.ema_decay)

    def _ids(self, text: str, special: bool) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def _thought_ids(self, completion: Any, ids: Sequence[int] | None) -> list[int]:
        if ids is None:
            text = completion if isinstance(completion, str) else completion[-1]["content"]
            return self._ids(text, False)
        drop = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id} - {None}
        ids = list(ids)
        while ids and ids[-1] in drop:
            ids.pop()
        return ids

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        **columns: Any,
    ) -> list[float | None]:
        if self.model is None:
            raise SpectrumError(
                "the information gain reward has no model: pass reward.callback to the trainer's callbacks "
                "(or call reward.attach(model, tokenizer))"
            )
        if self.continuation_column not in columns:
            raise SpectrumError(
                f"the information gain reward needs the dataset column '{self.continuation_column}' "
                "(the text that follows each prompt)"
            )
        continuations = columns[self.continuation_column]
        suffix = self._ids(self.thought_suffix, False) if self.thought_suffix else []
        scored = [i for i, x in enumerate(continuations) if isinstance(x, str) and x]
        with_thought, without, targets = [], [], []
        for i in scored:
            prompt = prompts[i]
            if not isinstance(prompt, str):
                raise SpectrumError("the information gain reward takes text prefixes, not chat messages")
            context = (
                prompt[: -len(self.thought_open)]
                if self.thought_open and prompt.endswith(self.thought_open)
                else prompt
            )
            thought = self._thought_ids(completions[i], None if completion_ids is None else completion_ids[i])
            with_thought.append(self._ids(prompt, True) + thought + suffix)
            without.append(self._ids(context, True))
            targets.append(self._ids(continuations[i], False))
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        policy = continuation_logprobs(self.model, with_thought, targets, pad, self.batch_size)
        baseline = continuation_logprobs(self.baseline, without, targets, pad, self.batch_size)
        rewards: list[float | None] = [None] * len(completions)  # no continuation: no reward (NaN in TRL)
        for i, gained, base in zip(scored, policy, baseline, strict=True):
            gain = sum(gained) - sum(base)
            rewards[i] = gain / max(len(gained), 1) if self.reduction == "mean" else gain
        return rewards


class InformationGainCallback(TrainerCallback):
    """Attaches the trainer's model and tokenizer to the reward; steps the EMA baseline."""

    def __init__(self, reward: InformationGainReward):
        self.reward = reward

    def on_train_begin(
        self,
        args: Any,
        state: Any,
        control: Any,
        model: Any = None,
        processing_class: Any = None,
        **kwargs: Any,
    ) -> None:
        if self.reward.model is None:
            self.reward.attach(model, processing_class)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.reward.update_baseline()


def information_gain_reward(**kwargs: Any) -> InformationGainReward:
    """An :class:`InformationGainReward` (the recipe name ``information_gain``)."""
    return InformationGainReward(**kwargs)


def text_rows(
    texts: Iterable[str] | str | Path,
    context_words: int = 32,
    continuation_words: int = 8,
    stride: int | None = None,
) -> list[dict[str, str]]:
    """Plain text -> RLP rows ``{prompt: prefix, continuation: the next words}``.

    ``texts`` is a list of documents or a ``.txt`` file (documents separated by blank lines). Each
    document gives one row per ``stride`` words (default: ``context_words + continuation_words``,
    no overlap) once ``context_words`` of context are available; the continuation keeps its
    leading space so it tokenises as it would inside the text.
    """
    if context_words < 1 or continuation_words < 1:
        raise SpectrumError("context_words and continuation_words must be >= 1")
    if isinstance(texts, str | Path):
        path = Path(texts)
        if not path.is_file():
            raise SpectrumError(f"text file '{path}' does not exist")
        texts = [doc for doc in re.split(r"\n\s*\n", path.read_text(encoding="utf-8")) if doc.strip()]
    step = stride or context_words + continuation_words
    rows = []
    for document in texts:
        words = document.split()
        for start in range(0, len(words) - context_words - continuation_words + 1, step):
            end = start + context_words
            rows.append(
                {
                    "prompt": " ".join(words[start:end]),
                    "continuation": " " + " ".join(words[end : end + continuation_words]),
                }
            )
    if not rows:
        raise SpectrumError(
            f"no document has {context_words + continuation_words} words (context_words + continuation_words)"
        )
    return rows
