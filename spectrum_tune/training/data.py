"""Multi-reference rows: schema, loading, validation and grouping (tokenisation: :mod:`.tokenize`).

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
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..text import normalize_answer
from .fields import (
    FORMAT_COLUMN,
    KNOWN_FIELDS,
    MULTIREF_FIELDS,
    SOURCE_COLUMN,
    TEMPLATE_COLUMN,
    DataError,
    check_spectrum_fields,
    present_fields,
    row_kind,
)

__all__ = [
    "KNOWN_FIELDS",
    "DataError",
    "group_completions",
    "incontext_messages",
    "load_multiref",
    "multiref_dataset",
    "present_fields",
    "read_rows",
    "row_kind",
    "rows_to_dataset",
    "source_rows",
    "validate_incontext_row",
    "validate_row",
]

INCONTEXT_ROLES = ("description", "input", "output")


# --------------------------------------------------------------------------------------------
# Reading files
# --------------------------------------------------------------------------------------------


def _decode_utf8(raw: bytes, path: Path, first_line: int = 1) -> str:
    """``raw`` (text starting at line ``first_line`` of ``path``) decoded as UTF-8.

    A file in another encoding gets the one-line ``file:line`` :class:`DataError` every other
    bad file gets, naming the line of its first undecodable byte, instead of a traceback.
    """
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = first_line + raw.count(b"\n", 0, error.start)
        raise DataError(
            f"{path}:{line}", f"not UTF-8 text (byte 0x{raw[error.start]:02x}); re-save the file as UTF-8"
        ) from None


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
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                where = f"{path}:{number}"
                line = _decode_utf8(raw, path, number)
                if not line.strip():
                    continue
                try:
                    yield where, json.loads(line)
                except json.JSONDecodeError as error:
                    raise DataError(where, f"malformed JSON ({error.msg})") from None
    elif suffix == ".json":
        try:
            payload = json.loads(_decode_utf8(path.read_bytes(), path))
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


def _validate_prompt(prompt: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(prompt, str):
        if not prompt:
            raise DataError(where, "'prompt' is an empty string")
        return prompt
    if isinstance(prompt, list) and prompt:
        for index, message in enumerate(prompt):
            content = message.get("content") if isinstance(message, dict) else None
            # A tool-call turn may carry no text: its content is in `tool_calls`.
            if (
                not isinstance(message, dict)
                or not isinstance(message.get("role"), str)
                or not (isinstance(content, str) or message.get("tool_calls"))
            ):
                raise DataError(
                    where, f"'prompt' message {index} must be an object with string 'role' and 'content'"
                )
        # Keep every key (tool_calls, name, ...): the chat template reads them.
        return [present_fields(message) for message in prompt]
    raise DataError(where, "'prompt' must be a non-empty string or a list of chat messages")


def _validate_weights(weights: Any, count: int, where: str) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    if not isinstance(weights, list):
        raise DataError(where, "'weights' must be a list of numbers")
    if len(weights) != count:
        raise DataError(where, f"'weights' has {len(weights)} entries but 'references' has {count}")
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


def _assistant_text(value: Any) -> str | None:
    """The text of a one-message assistant turn (TRL's conversational completion), else None."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        message = present_fields(value[0])
        plain = set(message) <= {"role", "content"} and isinstance(message.get("content"), str)
        if plain and message.get("role") == "assistant":
            return message["content"]
    return None


def _completion_text(completion: Any, where: str) -> str:
    """The assistant text of a TRL completion (a string or a one-message assistant turn)."""
    if isinstance(completion, str):
        return completion
    text = _assistant_text(completion)
    if text is None:
        raise DataError(where, "'completion' must be a string or a single assistant message")
    return text


def _reference_texts(references: Any, chat: bool, where: str) -> list[str]:
    """References as strings: each a string or, with a chat prompt, one assistant message."""
    if not isinstance(references, list):
        raise DataError(where, "'references' must be a list of strings or of assistant messages")
    if not references:
        raise DataError(where, "'references' is empty")
    texts = []
    for index, reference in enumerate(references):
        text = reference if isinstance(reference, str) else _assistant_text(reference) if chat else None
        if text is None:
            raise DataError(
                where,
                f"reference {index} is not a string: {reference!r}"
                + (
                    " (with a chat prompt a reference may also be one assistant message, "
                    '[{"role": "assistant", "content": "..."}]; several messages or tool calls are a '
                    "single-target prompt/completion row)"
                    if chat
                    else ""
                ),
            )
        if not text:
            raise DataError(where, f"reference {index} is an empty string")
        texts.append(text)
    return texts


def _check_distinct(references: list[str], where: str) -> None:
    """Duplicates, and references that the eval would count as one answer, are errors."""
    seen: dict[str, int] = {}
    for index, reference in enumerate(references):
        if reference in seen:
            raise DataError(
                where, f"duplicate reference {reference!r} (entries {seen[reference]} and {index})"
            )
        seen[reference] = index
    normalised: dict[str, int] = {}
    for index, reference in enumerate(references):
        key = normalize_answer(reference)
        if key in normalised:
            other = references[normalised[key]]
            raise DataError(
                where,
                f"references {other!r} and {reference!r} (entries {normalised[key]} and {index}) are one "
                "answer after the eval's normalize_answer (strip, first line, trailing .!? and quotes, "
                "whitespace, casefold); merge them into one reference and add up their weights",
            )
        normalised[key] = index


def _template_kwargs(row: dict[str, Any], where: str) -> str | None:
    """A row's `tools` and `chat_template_kwargs` as one JSON object string (None if neither)."""
    extra: dict[str, Any] = {}
    tools = row.get("tools")
    if tools is not None:
        if isinstance(tools, str):
            try:
                tools = json.loads(tools)
            except json.JSONDecodeError as error:
                raise DataError(where, f"'tools' is not valid JSON ({error.msg})") from None
        if not isinstance(tools, list):
            raise DataError(where, "'tools' must be a list of tool definitions (or its JSON string)")
        extra["tools"] = tools
    kwargs = row.get("chat_template_kwargs")
    if kwargs is not None:
        if not isinstance(kwargs, dict):
            raise DataError(where, "'chat_template_kwargs' must be an object")
        extra.update(present_fields(kwargs))
    return json.dumps(extra) if extra else None


def validate_row(row: Any, where: str) -> dict[str, Any]:
    """Check one multi-reference row and return it normalised (weights summing to one).

    Unknown fields are errors (:func:`row_kind`); ``metadata`` (an object) is accepted and dropped;
    references given as one assistant message
    each are stored as their text; references that only differ by the eval's normalisation
    (:func:`spectrum_tune.text.normalize_answer`) are an error.
    """
    if not isinstance(row, dict):
        raise DataError(where, "a row must be a JSON object")
    check_spectrum_fields(present_fields(row), MULTIREF_FIELDS, "multi-reference", where)
    if "prompt" not in row:
        raise DataError(where, "missing field 'prompt'")
    prompt = _validate_prompt(row["prompt"], where)
    if "references" not in row:
        raise DataError(where, "missing field 'references' (or 'completion' for plain SFT rows)")
    references = _reference_texts(row["references"], not isinstance(prompt, str), where)
    _check_distinct(references, where)
    # provenance (data-build's teachers, counts, samples): checked, then left out of the dataset,
    # as free-form nested objects do not fit one Arrow column and nothing trains on them
    if not isinstance(row.get("metadata", {}), dict):
        raise DataError(where, "'metadata' must be an object")
    weights = _validate_weights(row.get("weights"), len(references), where)
    normalised = {
        "prompt": prompt,
        "references": references,
        "weights": weights,
        SOURCE_COLUMN: where,
        FORMAT_COLUMN: "multiref",
    }
    template = _template_kwargs(row, where)
    if template is not None:
        normalised[TEMPLATE_COLUMN] = template
    return normalised


def group_completions(rows: Iterable[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Group plain prompt/completion rows by context; weights are the empirical frequencies.

    The context is the prompt with the row's tools and chat-template kwargs; each group is
    checked like any multi-reference row (:func:`validate_row`).
    """
    groups: dict[str, tuple[str, dict[str, Any], dict[str, int]]] = {}
    for where, row in rows:
        if "prompt" not in row:
            raise DataError(where, "missing field 'prompt'")
        prompt = _validate_prompt(row["prompt"], where)
        completion = _completion_text(row["completion"], where)
        if not completion:
            raise DataError(where, "'completion' is an empty string")
        context = {"prompt": prompt, **{k: row[k] for k in ("tools", "chat_template_kwargs") if row.get(k)}}
        _, _, counts = groups.setdefault(json.dumps(context, sort_keys=True), (where, context, {}))
        counts[completion] = counts.get(completion, 0) + 1
    return [
        validate_row({**context, "references": list(counts), "weights": list(counts.values())}, where)
        for where, context, counts in groups.values()
    ]


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
    if not isinstance(row.get("metadata", {}), dict):
        raise DataError(where, "'metadata' must be an object")
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
        kind = row_kind(row, where)
        row = present_fields(row)
        if kind == "incontext":
            normalised.append(validate_incontext_row(row, where))
        elif kind == "multiref":
            normalised.append(validate_row(row, where))
        elif "completion" in row and "input_ids" not in row:
            plain.append((where, row))
        else:
            raise DataError(
                where,
                "a TRL single-target row (text, messages or input_ids): load_multiref reads multi-reference "
                "and prompt/completion rows; pass such a dataset to SpectrumTrainer directly",
            )
    return normalised + group_completions(plain)


def source_rows(
    source: str | Path | Sequence[str | Path] | Any, split: str = "train"
) -> list[tuple[str, Any]]:
    """``(where, row)`` for every row of ``source``, as read: nothing is validated yet.

    ``source`` is a ``.jsonl``/``.json``/``.parquet`` path (or a list of them), a
    ``datasets.Dataset``, or the name of a dataset on the Hub (``split`` picks the split);
    ``where`` is the ``file:line`` (or dataset row) later error messages name.
    """
    from datasets import Dataset, load_dataset

    if isinstance(source, Dataset):
        return [(f"dataset row {i + 1}", row) for i, row in enumerate(source)]
    paths = [source] if isinstance(source, str | Path) else list(source)
    if all(Path(p).suffix.lower() in {".jsonl", ".json", ".parquet"} for p in paths):
        return [pair for path in paths for pair in read_rows(path)]
    if len(paths) == 1 and not Path(paths[0]).exists():
        hub = load_dataset(str(paths[0]), split=split)
        return [(f"{paths[0]}[{split}] row {i + 1}", row) for i, row in enumerate(hub)]
    raise DataError(str(source), "expected .jsonl, .json or .parquet files or a Hub dataset")


def load_multiref(
    source: str | Path | Sequence[str | Path] | Any,
    split: str = "train",
) -> Any:
    """Load multi-reference rows as a validated ``datasets.Dataset``.

    ``source`` is what :func:`source_rows` reads. Columns of the result: ``prompt``,
    ``references``, ``weights`` (normalised), ``source`` (the ``file:line`` each row came from,
    used in later error messages) and ``format`` (``multiref``, or ``incontext`` for rows given
    as ``{"description"?, "outputs": [...]}``).
    """
    return multiref_dataset(source_rows(source, split), str(source))


def multiref_dataset(pairs: Iterable[tuple[str, Any]], name: str) -> Any:
    """Validated ``datasets.Dataset`` of the ``(where, row)`` pairs (see :func:`load_multiref`)."""
    rows = _normalise_rows(pairs)
    if not rows:
        raise DataError(name, "no rows")
    first_is_text = isinstance(rows[0]["prompt"], str)
    odd = next((row for row in rows if isinstance(row["prompt"], str) != first_is_text), None)
    if odd is not None:  # name the first row of the other kind, and the row it disagrees with
        kinds = ["a string prompt", "a chat-message prompt"][:: 1 if first_is_text else -1]
        raise DataError(
            odd[SOURCE_COLUMN],
            f"has {kinds[1]} but {rows[0][SOURCE_COLUMN]} has {kinds[0]}; "
            "use one kind of prompt in a dataset",
        )
    return rows_to_dataset(rows)


def rows_to_dataset(rows: list[dict[str, Any]]) -> Any:
    """``datasets.Dataset`` of normalised rows; a column only some rows have is None on the others.

    (`Dataset.from_list` takes its columns from the first row alone.)
    """
    from datasets import Dataset

    keys = list(dict.fromkeys(key for row in rows for key in row))
    return Dataset.from_list([{key: row.get(key) for key in keys} for row in rows])
