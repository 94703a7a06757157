"""Prompt rows for ``data-build``: what a user has, read into :class:`PromptRow` s.

A row holds the prompt (``prompt``, or another field named by ``prompt_field``; a string or chat
messages) and optionally:

* ``references`` -- a known valid set: measured in the report (validity of the built references)
  and, with ``valid_set_filters``, also a filter; with ``seed_references`` they are instead SFT
  answers that seed the row (a one-reference SFT file in this toolkit's schema);
* ``validator`` -- ``{int_range: ...}``, ``{regex: ...}`` or ``{one_of_file: ...}`` as in task files
  (:mod:`spectrum_tune.evaluation.validators`); it filters the teachers' answers;
* ``completion`` -- an SFT answer (a string or one assistant message): it seeds the row as an
  observed answer; rows sharing a prompt are one prompt whose seeds are all their completions.

A TRL conversational row ``{"messages": [..., {"role": "assistant", ...}]}`` reads as the
messages before the last assistant turn (the prompt) and that turn (a seed). Other fields are
ignored, so a Hub dataset with extra columns reads as it is. Every problem is a one-line
:class:`~spectrum_tune.training.data.DataError` naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..evaluation.tasks import Item
from ..evaluation.validators import Validator, parse_validator
from ..training.data import DataError, _completion_text, _validate_prompt, source_rows

__all__ = ["PromptRow", "read_prompts"]


@dataclass
class PromptRow:
    """One prompt to build references for, with what the user knows about its valid answers."""

    where: str
    prompt: str | list[dict[str, Any]]
    known: list[str] = field(default_factory=list)
    validator: Validator | None = None
    seeds: dict[str, int] = field(default_factory=dict)

    @property
    def item(self) -> Item:
        """The prompt as an eval item: what the eval's extraction and validity checks read."""
        return Item(self.where, prompt=self.prompt, references=list(self.known), validator=self.validator)


def _known(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise DataError(where, "'references' (a known valid set) must be a list of non-empty strings")
    return list(dict.fromkeys(value))


def _prompt_and_seed(row: dict[str, Any], prompt_field: str, where: str) -> tuple[Any, str | None]:
    if prompt_field not in row and isinstance(row.get("messages"), list):
        messages = row["messages"]
        if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "assistant":
            raise DataError(where, "'messages' must end with an assistant turn (its answer seeds the row)")
        return _validate_prompt(messages[:-1], where), _completion_text([messages[-1]], where)
    if prompt_field not in row:
        raise DataError(where, f"missing field '{prompt_field}' (the prompt)")
    prompt = _validate_prompt(row[prompt_field], where)
    seed = _completion_text(row["completion"], where) if row.get("completion") is not None else None
    if seed is not None and not seed.strip():
        raise DataError(where, "'completion' is empty")
    return prompt, seed


def read_prompts(
    source: str | Path | Any,
    *,
    split: str = "train",
    prompt_field: str = "prompt",
    default_validator: dict[str, Any] | None = None,
    seed_references: bool = False,
) -> list[PromptRow]:
    """The distinct prompts of ``source`` (a file, a ``datasets.Dataset`` or a Hub id) in order."""
    base = Path(source).parent if isinstance(source, str | Path) else Path(".")
    fallback = parse_validator(default_validator, "--validator", Path(".")) if default_validator else None
    rows: dict[str, PromptRow] = {}
    for where, row in source_rows(source, split):
        if not isinstance(row, dict):
            raise DataError(where, "a row must be a JSON object")
        row = {key: value for key, value in row.items() if value is not None}
        prompt, seed = _prompt_and_seed(row, prompt_field, where)
        known = _known(row["references"], where) if "references" in row else []
        validator = parse_validator(row["validator"], where, base) if "validator" in row else fallback
        key = json.dumps(prompt, sort_keys=True)
        entry = rows.setdefault(key, PromptRow(where, prompt, validator=validator))
        seeds = [seed] if seed is not None else []
        if seed_references:
            known, seeds = [], [*seeds, *known]
        entry.known = list(dict.fromkeys([*entry.known, *known]))
        for answer in seeds:
            entry.seeds[answer.strip()] = entry.seeds.get(answer.strip(), 0) + 1
    if not rows:
        raise DataError(str(source), "no prompt rows")
    return list(rows.values())
