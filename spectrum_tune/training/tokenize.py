"""Tokenisation of multi-reference rows: plain, chat and the in-context (Spectrum Tuning) format.

A reference's tokens end with its end token, included in its loss (the distribution the loss
matches is over *complete* outputs): the end-of-turn the chat template renders after an assistant
message for chat rows (:mod:`spectrum_tune.training.chat`), EOS for plain-text rows.
"""

from __future__ import annotations

import random
from typing import Any

from .chat import reference_end_id, render_chat, render_with_spans, span_mask
from .data import FORMAT_COLUMN, SOURCE_COLUMN, DataError, incontext_messages

__all__ = ["render_incontext", "sample_incontext_row", "tokenize_group"]


# --------------------------------------------------------------------------------------------
# Tokenisation
# --------------------------------------------------------------------------------------------


def _cut_after_end_of_turn(ids: list[int], end_id: int) -> list[int]:
    """Keep the completion up to and including its end-of-turn token, appending one if absent.

    Chat templates put text after the end-of-turn (a newline, an EOS, the next turn's header);
    the distribution the loss matches is over complete outputs, which end at that token.
    """
    if end_id in ids:
        return ids[: ids.index(end_id) + 1]
    return [*ids, end_id]


def _prompt_ids(prompt: str | list[dict[str, str]], tokenizer: Any) -> list[int]:
    """Token ids of a prompt; a chat prompt ends with the template's generation prompt."""
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    return list(_chat_ids(tokenizer, prompt, add_generation_prompt=True))


def _chat_ids(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    text = render_chat(tokenizer, messages, add_generation_prompt)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _completion_ids(
    prompt: str | list[dict[str, str]], prompt_ids: list[int], reference: str, tokenizer: Any
) -> list[int]:
    """Token ids of one reference after the prompt, its end token included.

    The end token is the template's end-of-turn for chat prompts (see :mod:`.chat`) and EOS for
    plain text. The whole sequence is tokenised at once (so merges across the boundary match
    what the model would generate); if that does not keep the prompt's tokens as a prefix, the
    reference is tokenised on its own instead.
    """
    if isinstance(prompt, str):
        full = list(tokenizer(prompt + reference)["input_ids"])
    else:
        full = _chat_ids(tokenizer, [*prompt, {"role": "assistant", "content": reference}], False)
    if full[: len(prompt_ids)] == prompt_ids and len(full) > len(prompt_ids):
        tail = full[len(prompt_ids) :]
    else:
        tail = list(tokenizer(reference, add_special_tokens=False)["input_ids"])
    return _cut_after_end_of_turn(tail, reference_end_id(tokenizer, prompt))


def tokenize_group(row: dict[str, Any], tokenizer: Any, max_length: int | None) -> dict[str, Any]:
    """Tokenise a validated row into a shared prompt and K completions.

    Returns ``prompt_ids`` (list[int]), ``completion_ids`` (K lists), ``completion_mask``
    (K lists of 0/1, 1 on loss tokens) and ``weights``. A prompt plus reference longer than
    ``max_length`` is an error: targets are never truncated silently.
    """
    where = row.get(SOURCE_COLUMN) or "row"
    if row.get(FORMAT_COLUMN) == "incontext":
        rendered = render_incontext(row["prompt"], tokenizer, max_length)
        if rendered is None:
            raise DataError(where, "in-context row has no loss token left after max_length")
        return rendered
    prompt_ids = _prompt_ids(row["prompt"], tokenizer)
    completions = [
        _completion_ids(row["prompt"], prompt_ids, reference, tokenizer) for reference in row["references"]
    ]
    if max_length is not None:
        for reference, ids in zip(row["references"], completions, strict=True):
            if len(prompt_ids) + len(ids) > max_length:
                raise DataError(
                    where,
                    f"prompt + reference {reference[:40]!r} is {len(prompt_ids) + len(ids)} tokens, "
                    f"longer than max_length={max_length}; raise max_length or shorten the row",
                )
    return {
        "prompt_ids": prompt_ids,
        "completion_ids": completions,
        "completion_mask": [[1] * len(ids) for ids in completions],
        "weights": list(row["weights"]),
    }


# --------------------------------------------------------------------------------------------
# In-context (Spectrum Tuning) format
# --------------------------------------------------------------------------------------------


def render_incontext(
    messages: list[dict[str, str]], tokenizer: Any, max_length: int | None = 1024
) -> dict[str, Any] | None:
    """Tokenise an in-context sequence with a loss mask on each output's content + end-of-turn.

    With no description the first output carries no loss (nothing could predict it).
    Sequences are cut at ``max_length`` tokens; a sequence left with no loss token returns
    ``None`` (the caller drops it). The result is a K = 1 group in :func:`tokenize_group`'s
    layout, with the prefix before the first loss token as its prompt.
    """
    has_description = bool(messages) and messages[0]["role"] == "description"
    outputs = [index for index, message in enumerate(messages) if message["role"] == "output"]
    # with no description the first output carries no loss: nothing could predict it
    scored = outputs if has_description else outputs[1:]
    text, spans = render_with_spans(tokenizer, messages, scored)
    ids, mask = span_mask(tokenizer, text, spans)
    if max_length is not None:
        ids, mask = ids[:max_length], mask[:max_length]
    if not any(mask):
        return None
    first = mask.index(1)
    return {
        "prompt_ids": ids[:first],
        "completion_ids": [ids[first:]],
        "completion_mask": [mask[first:]],
        "weights": [1.0],
    }


def sample_incontext_row(
    row: dict[str, Any], n_examples: int, rng: random.Random, keep_description: float = 0.6
) -> list[dict[str, str]]:
    """Render a multi-reference row as an in-context sequence of i.i.d. draws from its weights.

    The prompt (as text) becomes the task description with probability ``keep_description``
    (the published recipe keeps it 60% of the time).
    """
    prompt = row["prompt"] if isinstance(row["prompt"], str) else row["prompt"][-1]["content"]
    outputs = rng.choices(row["references"], weights=row["weights"], k=n_examples)
    description = prompt if rng.random() < keep_description else None
    return incontext_messages(outputs, description=description)
