"""Splitting a dataset into spectrum rows and TRL single-target rows (see :func:`row_kind`).

Prompt/completion rows that share a context (prompt, tools, template kwargs) and differ in their
completion are grouped into one multi-reference row whose weights are the empirical
frequencies; every other TRL row is left as it is, for TRL's own preparation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from .data import (
    DataError,
    multiref_dataset,
    present_fields,
    row_kind,
    rows_to_dataset,
    source_rows,
    validate_incontext_row,
    validate_row,
)

__all__ = ["TrainingData", "load_training_dataset", "split_rows"]


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _group_completions(rows: list[tuple[int, str, dict[str, Any]]]) -> tuple[list[dict[str, Any]], list[int]]:
    """Prompt/completion rows sharing a context -> multiref rows (two or more distinct completions)."""
    by_context: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    for entry in rows:
        row = entry[2]
        context = _key([row.get("prompt"), row.get("tools"), row.get("chat_template_kwargs")])
        by_context.setdefault(context, []).append(entry)
    grouped, single = [], []
    for members in by_context.values():
        counts: dict[str, int] = {}
        for _, _, row in members:
            counts[_key(row["completion"])] = counts.get(_key(row["completion"]), 0) + 1
        _, where, first = members[0]
        candidate = {
            "prompt": first["prompt"],
            "references": [json.loads(key) for key in counts],
            "weights": list(counts.values()),
            **{key: first[key] for key in ("tools", "chat_template_kwargs") if first.get(key) is not None},
        }
        if len(counts) < 2:
            single.extend(index for index, _, _ in members)
            continue
        try:
            grouped.append(validate_row(candidate, where))
        except DataError:
            # Completions that cannot be references (several messages, tool calls) stay TRL rows.
            single.extend(index for index, _, _ in members)
    return grouped, sorted(single)


def split_rows(
    rows: Iterable[tuple[str, Any]], text_field: str = "text"
) -> tuple[list[dict[str, Any]], list[int]]:
    """Validate every row; return the normalised spectrum rows and the indices of the TRL rows.

    The TRL rows are left as they are (TRL prepares them); a TRL dataset mixing formats
    (``text`` rows and ``messages`` rows) is an error, as TRL reads the format off one row.
    """
    spectrum: list[dict[str, Any]] = []
    completions: list[tuple[int, str, dict[str, Any]]] = []
    single: list[int] = []
    single_formats: dict[str, str] = {}
    for index, (where, row) in enumerate(rows):
        kind = row_kind(row, where, text_field)
        if kind == "multiref":
            spectrum.append(validate_row(present_fields(row), where))
        elif kind == "incontext":
            spectrum.append(validate_incontext_row(present_fields(row), where))
        else:
            fields = present_fields(row)
            fmt = next(
                (f for f in ("input_ids", "completion", "messages", "conversations") if f in fields),
                text_field,
            )
            single_formats.setdefault(fmt, where)
            if len(single_formats) > 1:
                first, other = list(single_formats)
                raise DataError(
                    where,
                    f"a {other!r} row after {first!r} rows (first at {single_formats[first]}); "
                    "TRL reads one format per dataset, so give each its own dataset",
                )
            if fmt == "completion" and "prompt" in fields:
                completions.append((index, where, fields))
            else:
                single.append(index)
    grouped, ungrouped = _group_completions(completions)
    return spectrum + grouped, sorted(single + ungrouped)


def _trl_only(row: Any, where: str, text_field: str) -> bool:
    """A TRL row that ``load_multiref`` cannot read (text, messages, conversations, input_ids)."""
    if row_kind(row, where, text_field) != "single":
        return False
    fields = present_fields(row)
    return "completion" not in fields or "input_ids" in fields


class TrainingData(NamedTuple):
    """What :func:`load_training_dataset` read."""

    dataset: Any  # what SpectrumTrainer takes as train_dataset
    groups: Any  # the validated spectrum groups (rows with prompt, references, weights)
    single_rows: int  # TRL single-target rows, left for SFTTrainer's preparation


def load_training_dataset(source: Any, split: str = "train", text_field: str = "text") -> TrainingData:
    """The train job's dataset from a data file, a list of them, a Dataset or a Hub dataset.

    Spectrum and prompt/completion rows come back as :func:`~.data.load_multiref` gives them
    (validated groups). A dataset that also holds TRL single-target rows (``text``, ``messages``,
    ``conversations``, pre-tokenised ``input_ids``) is validated here, every row named by its
    ``file:line``, and comes back as read, for ``SpectrumTrainer`` to prepare as SFTTrainer does.
    """
    pairs = source_rows(source, split)
    if not pairs:
        raise DataError(str(source), "no rows")
    if not any(_trl_only(row, where, text_field) for where, row in pairs):
        dataset = multiref_dataset(pairs, str(source))
        return TrainingData(dataset, dataset, 0)
    groups, single = split_rows(pairs, text_field)
    return TrainingData(rows_to_dataset([present_fields(row) for _, row in pairs]), groups, len(single))
