"""Row kinds and their fields: which rows get the spectrum loss, which are TRL's; strict field checks.

A row is ``multiref`` (``prompt``, ``references``, ``weights``?, ``tools``?, ``chat_template_kwargs``?,
``metadata``? -- an object kept for the record, e.g. ``data-build``'s provenance, never trained on),
``incontext`` (``description``?, ``inputs``?, ``outputs``) or a TRL single-target row (``text``,
``messages``, ``prompt``/``completion``, pre-tokenised ``input_ids``). Unknown fields never train
silently: in a spectrum row every unknown field is an error; in a TRL row (where TRL ignores extra
columns such as ``id``) a near-miss of a known field, or a spectrum-only field, is an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from ..errors import SpectrumError

__all__ = ["KNOWN_FIELDS", "DataError", "check_spectrum_fields", "present_fields", "row_kind"]

SOURCE_COLUMN = "source"
FORMAT_COLUMN = "format"
# A multi-reference row's `tools` and `chat_template_kwargs`, as one JSON object (Arrow cannot hold
# free-form nested objects in one column); passed to the chat template when it is tokenised.
TEMPLATE_COLUMN = "template_kwargs"


class DataError(SpectrumError, ValueError):
    """A row that cannot be trained on; the message starts with ``file:line`` (or the row)."""

    def __init__(self, where: str, problem: str):
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem

    def __reduce__(self) -> tuple:
        # rebuilt from both arguments, so a worker process (the demos' pools) can send it back
        # whole; the default pickling passes only the message and the pool would break instead
        return type(self), (self.where, self.problem)


# `viewpoints`: an overtone row's listed viewpoints (evaluation.overtone); the loss ignores them, so
# one file is both an overtone eval items file and SFT rows with a viewpoint-complete reference.
# `metadata`: a built row's provenance (data_build), checked to be an object and dropped.
MULTIREF_FIELDS = frozenset(
    {"prompt", "references", "weights", "tools", "chat_template_kwargs", "viewpoints", "metadata"}
)
INCONTEXT_FIELDS = frozenset({"description", "inputs", "outputs", "metadata"})
INTERNAL_FIELDS = frozenset({SOURCE_COLUMN, FORMAT_COLUMN, TEMPLATE_COLUMN})
TRL_FIELDS = frozenset(
    {
        "text",
        "messages",
        "conversations",
        "prompt",
        "completion",
        "tools",
        "chat_template_kwargs",
        "images",
        "image",
        "input_ids",
        "labels",
        "completion_mask",
        "assistant_masks",
        "attention_mask",
        "seq_lengths",
        "position_ids",
        "token_type_ids",
    }
)
KNOWN_FIELDS = MULTIREF_FIELDS | INCONTEXT_FIELDS | INTERNAL_FIELDS | TRL_FIELDS
# Fields that make a row a TRL single-target row (besides the configurable text field).
_TRL_TARGETS = ("input_ids", "messages", "conversations", "completion")


def present_fields(row: dict[str, Any]) -> dict[str, Any]:
    """The row without ``None`` values: a column another row has is absent from this one."""
    return {key: value for key, value in row.items() if value is not None}


def _suggestion(field: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(field, sorted(known), n=1, cutoff=0.75)
    return f"did you mean {close[0]!r}?" if close else ""


def check_spectrum_fields(fields: Iterable[str], allowed: frozenset[str], kind: str, where: str) -> None:
    for field in fields:
        if field in allowed or field in INTERNAL_FIELDS:
            continue
        hint = _suggestion(field, allowed)
        if not hint and field in TRL_FIELDS:
            hint = f"{field!r} belongs to TRL's single-target rows; give it as a separate row"
        raise DataError(
            where,
            f"unknown field {field!r} in a {kind} row; "
            + (hint or f"remove or rename it (known: {', '.join(sorted(allowed))})"),
        )


def row_kind(row: Any, where: str, text_field: str = "text") -> str:
    """``"multiref"``, ``"incontext"`` or ``"single"`` (a TRL row); raises on unknown fields."""
    if not isinstance(row, dict):
        raise DataError(where, "a row must be a JSON object")
    fields = present_fields(row)
    if "references" in fields:
        check_spectrum_fields(fields, MULTIREF_FIELDS, "multi-reference", where)
        return "multiref"
    if "outputs" in fields:
        check_spectrum_fields(fields, INCONTEXT_FIELDS, "in-context", where)
        return "incontext"
    known = KNOWN_FIELDS | {text_field}
    for field in fields:
        if field in (MULTIREF_FIELDS | INCONTEXT_FIELDS) - TRL_FIELDS:
            # e.g. `weights` on a prompt/completion row: TRL would drop it and train on one target.
            raise DataError(
                where,
                f"field {field!r} belongs to a multi-reference row (with 'references') "
                "or an in-context row (with 'outputs'); this row has neither",
            )
        hint = "" if field in known else _suggestion(field, known)
        if hint:
            raise DataError(where, f"unknown field {field!r}; {hint}")
    if text_field in fields or any(field in fields for field in _TRL_TARGETS):
        return "single"
    if "prompt" in fields:
        raise DataError(where, "missing field 'references' (or 'completion' for plain SFT rows)")
    raise DataError(
        where,
        f"no training target: give 'references' (multi-reference), 'completion', 'messages', "
        f"{text_field!r} or 'input_ids' (fields found: {', '.join(sorted(fields)) or 'none'})",
    )
