"""Reading verbose answers: per-task answer extraction and an optional format instruction.

A task may set ``extract`` (default none = strict, the answer is the whole generation):

* ``first_valid`` -- the first member of the item's valid set found in the text: the earliest
  listed reference occurring as a whole word (case-insensitive; the longest one at a tie), or,
  for validator items, the first integer in range (``int_range``), the first regex match
  (``regex``) or the first listed answer (``one_of_file``);
* ``regex`` -- the first match of ``extract_regex`` (its first group when it has one);
* ``last_line`` -- the last non-empty line.

``format_instruction`` (free text) is appended to the prompt (to the last user message of a chat
prompt), e.g. "Answer with just the name, nothing else.". Results report the strict metrics
(``validity``, ...) and the extracted ones (``validity_extracted``, ``yield_extracted``,
``coverage_extracted``) side by side.
"""

from __future__ import annotations

import re
from typing import Any

from ..training.data import DataError

__all__ = ["EXTRACT_MODES", "append_instruction", "extract_answer", "readout_options"]

EXTRACT_MODES = ("first_valid", "regex", "last_line")
_INTEGER = re.compile(r"(?<![\w.])[+-]?\d+(?!\w|\.\d)")


def append_instruction(prompt: str | list[dict[str, str]], instruction: str) -> str | list[dict[str, str]]:
    """The prompt with ``instruction`` appended (to the last user turn of a chat prompt)."""
    if isinstance(prompt, str):
        return f"{prompt.rstrip()}\n{instruction}"
    messages = [dict(message) for message in prompt]
    for message in reversed(messages):
        if message["role"] == "user":
            message["content"] = f"{message['content'].rstrip()}\n\n{instruction}"
            return messages
    return [*messages, {"role": "user", "content": instruction}]


def _first_listed(text: str, candidates: list[str]) -> str | None:
    best: tuple[int, int, str] | None = None
    for candidate in candidates:
        match = re.search(rf"(?<!\w){re.escape(candidate)}(?!\w)", text, re.IGNORECASE)
        if match and (best is None or (match.start(), -len(candidate)) < (best[0], best[1])):
            best = (match.start(), -len(candidate), candidate)
    return best[2] if best else None


def _first_valid(text: str, item: Any) -> str | None:
    if item.references:
        found = _first_listed(text, item.references)
        if found is not None or item.validator is None:
            return found
    validator = item.validator
    if validator is None:
        return None
    if validator.kind == "int_range":
        for match in _INTEGER.finditer(text):
            if validator(match.group()):
                return match.group()
        return None
    if validator.kind == "regex":
        match = validator.pattern.search(text)
        return match.group() if match else None
    return _first_listed(text, sorted(validator.allowed))


def extract_answer(text: str, mode: str, item: Any, pattern: re.Pattern | None = None) -> str | None:
    """The answer read from ``text`` by ``mode`` (module docstring); ``None`` when nothing is found."""
    if mode == "first_valid":
        return _first_valid(text, item)
    if mode == "regex":
        if pattern is None:
            raise ValueError("extract 'regex' needs extract_regex")
        match = pattern.search(text)
        if match is None:
            return None
        return match.group(1) if pattern.groups else match.group()
    if mode == "last_line":
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return lines[-1] if lines else None
    raise ValueError(f"unknown extract mode '{mode}' (use {', '.join(EXTRACT_MODES)})")


def _field_error(where: str, name: str, problem: str) -> DataError:
    return DataError(where, f"field '{name}': {problem}")


def readout_options(
    data: dict[str, Any], items: list[Any], where: str
) -> tuple[bool, str | None, re.Pattern | None]:
    """A task file's ``published``, ``extract`` (+ ``extract_regex``) and ``format_instruction`` keys.

    The instruction is applied to the items' prompts here; bad values raise ``DataError``.
    """
    published = data.get("published", False)
    if not isinstance(published, bool):
        raise _field_error(where, "published", "must be true or false")
    extract = data.get("extract")
    if extract is not None and extract not in EXTRACT_MODES:
        raise _field_error(where, "extract", f"must be one of {list(EXTRACT_MODES)}, got {extract!r}")
    pattern = None
    if (extract == "regex") != ("extract_regex" in data):
        raise _field_error(where, "extract_regex", "is needed with extract: regex (and only with it)")
    if extract == "regex":
        try:
            pattern = re.compile(str(data["extract_regex"]))
        except re.error as error:
            raise _field_error(where, "extract_regex", f"invalid regular expression ({error})") from None
    instruction = data.get("format_instruction")
    if instruction is not None:
        if not isinstance(instruction, str) or not instruction.strip():
            raise _field_error(where, "format_instruction", "must be a non-empty string")
        for item in items:
            if item.prompt is not None:
                item.prompt = append_instruction(item.prompt, instruction.strip())
    return published, extract, pattern
