"""Validators: membership tests for valid sets too large to list (``validator:`` in a task item).

* ``{int_range: {min: 0, max: 999}}`` -- the stripped answer is a *canonical* integer in [min, max],
  ``-?(0|[1-9][0-9]*)``, so "07", "+7" and "7." are invalid. ``lenient: true`` accepts any
  ``[+-]?[0-9]+`` spelling of an in-range number after
  :func:`~spectrum_tune.evaluation.metrics.normalize_answer` (the old behaviour: "07", "+7", "7.");
* ``{regex: "[a-z]+"}`` -- full match, case-insensitive, on the normalised answer;
* ``{one_of_file: names.txt}`` -- membership in a list file (one answer per line, relative to the YAML).

:meth:`Validator.published` is the reference's check on the stripped, un-normalised text
(``--published``): for ``int_range`` :func:`~spectrum_tune.evaluation.published.reference_int_valid`,
for ``regex`` a case-sensitive full match, for ``one_of_file`` exact membership in the stripped lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..training.data import DataError
from .metrics import normalize_answer
from .published import reference_int_valid

__all__ = ["Validator", "parse_validator"]

_CANONICAL_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_LENIENT_INTEGER = re.compile(r"[+-]?\d+")


def _error(where: str, name: str, problem: str) -> DataError:
    return DataError(where, f"field '{name}': {problem}")


@dataclass(frozen=True)
class Validator:
    """A membership test for valid sets too large to list (see the module docstring)."""

    kind: str
    spec: Any
    allowed: frozenset[str] = frozenset()
    pattern: re.Pattern | None = None
    listed: frozenset[str] = frozenset()  # one_of_file lines as written (stripped), for --published

    @property
    def size(self) -> int | None:
        """Number of valid answers when known (used as the entropy's support size)."""
        if self.kind == "int_range":
            return int(self.spec["max"]) - int(self.spec["min"]) + 1
        if self.kind == "one_of_file":
            return len(self.allowed)
        return None

    def __call__(self, sample: str) -> bool:
        answer = normalize_answer(sample)
        if self.kind == "int_range":
            if self.spec.get("lenient"):
                ok = _LENIENT_INTEGER.fullmatch(answer) is not None
            else:  # canonical: the stripped text itself, so a trailing "." is not forgiven
                answer = sample.strip()
                ok = _CANONICAL_INTEGER.fullmatch(answer) is not None and answer != "-0"
            return ok and self.spec["min"] <= int(answer) <= self.spec["max"]
        if self.kind == "regex":
            return self.pattern.fullmatch(answer) is not None
        return answer in self.allowed

    def published(self, text: str) -> bool:
        """The reference's check of a stripped generation (no normalisation)."""
        if self.kind == "int_range":
            return reference_int_valid(text, self.spec["min"], self.spec["max"])
        if self.kind == "regex":
            return re.fullmatch(self.spec, text) is not None
        return text in self.listed


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_range(value: Any, where: str) -> Validator:
    if not isinstance(value, dict) or not {"min", "max"} <= set(value) <= {"min", "max", "lenient"}:
        raise _error(where, "validator.int_range", "must be {min: int, max: int} (optionally lenient: true)")
    if not (_is_int(value["min"]) and _is_int(value["max"])) or value["min"] > value["max"]:
        raise _error(where, "validator.int_range", "min and max must be integers with min <= max")
    if not isinstance(value.get("lenient", False), bool):
        raise _error(where, "validator.int_range.lenient", "must be true or false")
    return Validator("int_range", dict(value))


def parse_validator(spec: Any, where: str, base: Path) -> Validator:
    """Build a :class:`Validator` from its YAML/JSON form; list files resolve against ``base``."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise _error(where, "validator", "must be a mapping with one of int_range, regex, one_of_file")
    ((kind, value),) = spec.items()
    if kind == "int_range":
        return _int_range(value, where)
    if kind == "regex":
        if not isinstance(value, str) or not value:
            raise _error(where, "validator.regex", "must be a non-empty string")
        try:
            pattern = re.compile(value, re.IGNORECASE)
        except re.error as error:
            raise _error(where, "validator.regex", f"invalid regular expression ({error})") from None
        return Validator("regex", value, pattern=pattern)
    if kind == "one_of_file":
        if not isinstance(value, str) or not value:
            raise _error(where, "validator.one_of_file", "must be a file path")
        path = base / value
        if not path.is_file():
            raise _error(where, "validator.one_of_file", f"no such file {path}")
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if not lines:
            raise _error(where, "validator.one_of_file", f"{path} lists no answers")
        allowed = frozenset(normalize_answer(line) for line in lines)
        return Validator("one_of_file", value, allowed=allowed, listed=frozenset(lines))
    raise _error(where, "validator", f"unknown validator '{kind}' (use int_range, regex or one_of_file)")
