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

from ..errors import SpectrumError

__all__ = [
    "DataError",
    "group_completions",
    "incontext_messages",
    "load_multiref",
    "read_rows",
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
    first_is_text = isinstance(rows[0]["prompt"], str)
    odd = next((row for row in rows if isinstance(row["prompt"], str) != first_is_text), None)
    if odd is not None:  # name the first row of the other kind, and the row it disagrees with
        kinds = ["a string prompt", "a chat-message prompt"][:: 1 if first_is_text else -1]
        raise DataError(odd[SOURCE_COLUMN], f"has {kinds[1]} but {rows[0][SOURCE_COLUMN]} has {kinds[0]}; "
                        "use one kind of prompt in a dataset")
    return Dataset.from_list(rows)
