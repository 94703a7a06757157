"""Multi-reference rows: schema, loading, validation, grouping and tokenisation.

One row is one context with a set of valid outputs and their target weights::

    {"prompt": "Name a US state.", "references": ["Ohio", "Texas"], "weights": [0.6, 0.4]}

``prompt`` is a string or a list of chat messages. Plain TRL prompt/completion rows are
accepted too: rows that share a prompt are grouped into one multi-reference row whose weights
are the empirical frequencies. Every problem is reported as a :class:`DataError` that names
the file and line (or dataset row) it came from; nothing trains on a bad row.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import SpectrumError

__all__ = [
    "DataError",
    "group_completions",
    "incontext_messages",
    "load_multiref",
    "read_rows",
    "render_incontext",
    "sample_incontext_row",
    "tokenize_group",
    "validate_incontext_row",
    "validate_row",
]

SOURCE_COLUMN = "source"
FORMAT_COLUMN = "format"
INCONTEXT_ROLES = ("description", "input", "output")


class DataError(SpectrumError, ValueError):
    """A row that cannot be trained on; the message starts with ``file:line`` (or the row)."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------


def read_rows(path: str | Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(where, row)`` pairs from a JSONL, JSON or Parquet file.

    ``where`` is ``file:line`` for JSONL, ``file:item N`` for a JSON array and
    ``file:row N`` for Parquet (all 1-based), so errors point at the offending row.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(str(path), "no such data file")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    yield where, json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(where, f"malformed JSON ({error.msg})") from None
    elif suffix == ".json":
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{error.lineno}", f"malformed JSON ({error.msg})") from None
        if isinstance(payload, dict) and isinstance(payload.get("data"), list):
            payload = payload["data"]
        if not isinstance(payload, list):
            raise DataError(str(path), "a .json data file must hold a list of rows")
        for number, row in enumerate(payload, start=1):
            yield f"{path}:item {number}", row
    elif suffix == ".parquet":
        import pyarrow.parquet as pq

        for number, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield f"{path}:row {number}", row
    else:
        raise DataError(str(path), "unsupported data file type (use .jsonl, .json or .parquet)")


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------


def _validate_prompt(prompt: Any, where: str) -> str | list[dict[str, str]]:
    if isinstance(prompt, str):
        if not prompt:
            raise DataError(where, "'prompt' is an empty string")
        return prompt
    if isinstance(prompt, list) and prompt:
        for index, message in enumerate(prompt):
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("role"), str)
                or not isinstance(message.get("content"), str)
            ):
                raise DataError(
                    where, f"'prompt' message {index} must be an object with string 'role' and 'content'"
                )
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    raise DataError(where, "'prompt' must be a non-empty string or a list of chat messages")


def _validate_weights(weights: Any, count: int, where: str) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    if not isinstance(weights, list):
        raise DataError(where, "'weights' must be a list of numbers")
    if len(weights) != count:
        raise DataError(
            where, f"'weights' has {len(weights)} entries but 'references' has {count}"
        )
    values = []
    for index, weight in enumerate(weights):
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise DataError(where, f"weight {index} is not a number: {weight!r}")
        if math.isnan(weight) or math.isinf(weight):
            raise DataError(where, f"weight {index} is {weight}")
        if weight < 0:
            raise DataError(where, f"weight {index} is negative ({weight})")
        values.append(float(weight))
    total = sum(values)
    if total <= 0:
        raise DataError(where, "'weights' are all zero")
    return [value / total for value in values]


def _completion_text(completion: Any, where: str) -> str:
    """The assistant text of a TRL completion (a string or a one-message assistant turn)."""
    if isinstance(completion, str):
        return completion
    if (
        isinstance(completion, list)
        and len(completion) == 1
        and isinstance(completion[0], dict)
        and isinstance(completion[0].get("content"), str)
    ):
        return completion[0]["content"]
    raise DataError(where, "'completion' must be a string or a single assistant message")


def validate_row(row: Any, where: str) -> dict[str, Any]:
    """Check one multi-reference row and return it normalised (weights summing to one)."""
    if not isinstance(row, dict):
        raise DataError(where, "a row must be a JSON object")
    if "prompt" not in row:
        raise DataError(where, "missing field 'prompt'")
    prompt = _validate_prompt(row["prompt"], where)
    if "references" not in row:
        raise DataError(where, "missing field 'references' (or 'completion' for plain SFT rows)")
    references = row["references"]
    if not isinstance(references, list):
        raise DataError(where, "'references' must be a list of strings")
    if not references:
        raise DataError(where, "'references' is empty")
    for index, reference in enumerate(references):
        if not isinstance(reference, str):
            raise DataError(where, f"reference {index} is not a string: {reference!r}")
        if not reference:
            raise DataError(where, f"reference {index} is an empty string")
    seen: dict[str, int] = {}
    for index, reference in enumerate(references):
        if reference in seen:
            raise DataError(
                where, f"duplicate reference {reference!r} (entries {seen[reference]} and {index})"
            )
        seen[reference] = index
    weights = _validate_weights(row.get("weights"), len(references), where)
    return {
        "prompt": prompt,
        "references": list(references),
        "weights": weights,
        SOURCE_COLUMN: where,
        FORMAT_COLUMN: "multiref",
    }


def group_completions(rows: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Group plain prompt/completion rows by prompt; weights are the empirical frequencies."""
    groups: dict[str, dict[str, Any]] = {}
    for where, row in rows:
        prompt = _validate_prompt(row.get("prompt"), where) if "prompt" in row else None
        if prompt is None:
            raise DataError(where, "missing field 'prompt'")
        completion = _completion_text(row["completion"], where)
        if not completion:
            raise DataError(where, "'completion' is an empty string")
        key = json.dumps(prompt, sort_keys=True)
        group = groups.setdefault(key, {"prompt": prompt, "counts": {}, SOURCE_COLUMN: where})
        group["counts"][completion] = group["counts"].get(completion, 0) + 1
    grouped = []
    for group in groups.values():
        total = sum(group["counts"].values())
        grouped.append(
            {
                "prompt": group["prompt"],
                "references": list(group["counts"]),
                "weights": [count / total for count in group["counts"].values()],
                SOURCE_COLUMN: group[SOURCE_COLUMN],
                FORMAT_COLUMN: "multiref",
            }
        )
    return grouped


def validate_incontext_row(row: dict[str, Any], where: str) -> dict[str, Any]:
    """Check an in-context row ``{"description"?, "inputs"?, "outputs": [...]}``.

    It is stored with its rendered messages as the prompt and no references; the trainer
    tokenises it with :func:`render_incontext`.
    """
    outputs = row["outputs"]
    if not isinstance(outputs, list) or not outputs:
        raise DataError(where, "'outputs' must be a non-empty list of strings")
    if not all(isinstance(output, str) and output for output in outputs):
        raise DataError(where, "every entry of 'outputs' must be a non-empty string")
    inputs = row.get("inputs")
    if inputs is not None and (not isinstance(inputs, list) or len(inputs) != len(outputs)):
        raise DataError(where, "'inputs' must be a list as long as 'outputs'")
    description = row.get("description")
    if description is not None and not isinstance(description, str):
        raise DataError(where, "'description' must be a string")
    if not description and len(outputs) < 2:
        raise DataError(where, "without a description an in-context row needs >= 2 outputs")
    return {
        "prompt": incontext_messages(outputs, description, inputs),
        "references": [],
        "weights": [],
        SOURCE_COLUMN: where,
        FORMAT_COLUMN: "incontext",
    }


def _normalise_rows(rows: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    normalised: list[dict[str, Any]] = []
    plain: list[tuple[str, dict[str, Any]]] = []
    for where, row in rows:
        if isinstance(row, dict) and "outputs" in row and "references" not in row:
            normalised.append(validate_incontext_row(row, where))
        elif isinstance(row, dict) and "completion" in row and "references" not in row:
            plain.append((where, row))
        else:
            normalised.append(validate_row(row, where))
    return normalised + group_completions(plain)


def load_multiref(
    source: str | Path | Sequence[str | Path] | Any,
    split: str = "train",
) -> Any:
    """Load multi-reference rows as a validated ``datasets.Dataset``.

    ``source`` is a ``.jsonl``/``.json``/``.parquet`` path (or a list of them), a
    ``datasets.Dataset``, or the name of a dataset on the Hub (``split`` picks the split).
    Columns of the result: ``prompt``, ``references``, ``weights`` (normalised), ``source``
    (the ``file:line`` each row came from, used in later error messages) and ``format``
    (``multiref``, or ``incontext`` for rows given as ``{"description"?, "outputs": [...]}``).
    """
    from datasets import Dataset, load_dataset

    if isinstance(source, Dataset):
        rows = _normalise_rows((f"dataset row {i + 1}", row) for i, row in enumerate(source))
    else:
        paths = [source] if isinstance(source, str | Path) else list(source)
        if all(Path(p).suffix.lower() in {".jsonl", ".json", ".parquet"} for p in paths):
            rows = _normalise_rows(pair for path in paths for pair in read_rows(path))
        elif len(paths) == 1 and not Path(paths[0]).exists():
            hub = load_dataset(str(paths[0]), split=split)
            rows = _normalise_rows((f"{paths[0]}[{split}] row {i + 1}", r) for i, r in enumerate(hub))
        else:
            raise DataError(str(source), "expected .jsonl, .json or .parquet files or a Hub dataset")
    if not rows:
        raise DataError(str(source), "no rows")
    kinds = {isinstance(row["prompt"], str) for row in rows}
    if len(kinds) > 1:
        raise DataError(str(source), "mixes string prompts and chat-message prompts; use one kind")
    return Dataset.from_list(rows)


# --------------------------------------------------------------------------------------------
# Tokenisation
# --------------------------------------------------------------------------------------------


def _end_of_turn_id(tokenizer: Any) -> int:
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token; set `eos_token` in the config")
    return int(tokenizer.eos_token_id)


def _cut_after_end_of_turn(ids: list[int], eos_id: int) -> list[int]:
    """Keep the completion up to and including its end-of-turn token, appending one if absent.

    Chat templates put text after the end-of-turn (a newline, the next turn's header); the
    distribution the loss matches is over complete outputs, which end at that token.
    """
    if eos_id in ids:
        return ids[: ids.index(eos_id) + 1]
    return [*ids, eos_id]


def _prompt_ids(prompt: str | list[dict[str, str]], tokenizer: Any) -> list[int]:
    if isinstance(prompt, str):
        return list(tokenizer(prompt)["input_ids"])
    return list(_chat_ids(tokenizer, prompt, add_generation_prompt=True))


def _chat_ids(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> list[int]:
    text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _completion_ids(
    prompt: str | list[dict[str, str]], prompt_ids: list[int], reference: str, tokenizer: Any
) -> list[int]:
    """Token ids of one reference after the prompt, end-of-turn included.

    The whole sequence is tokenised at once (so merges across the boundary match what the
    model would generate); if that does not keep the prompt's tokens as a prefix, the
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
    return _cut_after_end_of_turn(tail, _end_of_turn_id(tokenizer))


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
        _completion_ids(row["prompt"], prompt_ids, reference, tokenizer)
        for reference in row["references"]
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


def incontext_messages(
    outputs: Sequence[str],
    description: str | None = None,
    inputs: Sequence[str | None] | None = None,
) -> list[dict[str, str]]:
    """Messages of one in-context sequence: optional description, then (input?, output) turns.

    The roles are ``description``, ``input`` and ``output``; the model's own chat template
    renders them with its turn tokens (for ChatML: ``<|im_start|>output\\n...<|im_end|>``).
    """
    messages = [{"role": "description", "content": description}] if description else []
    for index, output in enumerate(outputs):
        given = inputs[index] if inputs is not None else None
        if given:
            messages.append({"role": "input", "content": given})
        messages.append({"role": "output", "content": output})
    return messages


def render_incontext(
    messages: list[dict[str, str]], tokenizer: Any, max_length: int | None = 1024
) -> dict[str, Any] | None:
    """Tokenise an in-context sequence with a loss mask on each output's content + end-of-turn.

    With no description the first output carries no loss (nothing could predict it).
    Sequences are cut at ``max_length`` tokens; a sequence left with no loss token returns
    ``None`` (the caller drops it). The result is a K = 1 group in :func:`tokenize_group`'s
    layout, with the prefix before the first loss token as its prompt.
    """
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    eos_text = tokenizer.eos_token or ""
    spans = []
    has_description = bool(messages) and messages[0]["role"] == "description"
    first_output = True
    for index, message in enumerate(messages):
        if message["role"] != "output":
            continue
        if first_output and not has_description:
            first_output = False
            continue
        first_output = False
        turn_start = len(tokenizer.apply_chat_template(messages[:index], tokenize=False)) if index else 0
        start = text.index(message["content"], turn_start)
        end = start + len(message["content"])
        if eos_text and text.startswith(eos_text, end):
            end += len(eos_text)
        spans.append((start, end))
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    mask = [
        int(any(begin < span_end and finish > span_start for span_start, span_end in spans))
        for begin, finish in encoded["offset_mapping"]
    ]
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
