"""Eval task files -> :class:`Task` and :class:`Item` objects (validated, with file:field errors).

Task file format
----------------
A task is one YAML file::

    name: numbers_heldout_new_widths       # required, unique across the run
    description: Held-out ranges ...       # optional, free text for the report
    split: heldout                         # required: heldout | tuned (tuned = prompts in the tuning files)
    kind: open                             # optional: open | closed | distribution | steer | freetext
                                           # | overtone
    samples: 100                           # optional: samples per item in sample mode (default 100;
                                           # `--samples N` overrides every task)
    max_new_tokens: 16                     # optional (default 16)
    stop: ["\\n"]                          # optional stop strings (default ["\\n"]); the
                                           # end-of-turn token always stops too
    items:                                 # either inline rows ...
      - prompt: [{role: user, content: "Pick a number between 1 and 6."}]
        references: ["1", "2", "3", "4", "5", "6"]
        weights: [0.5, 0.1, 0.1, 0.1, 0.1, 0.1]      # optional target; default uniform
    items_file: numbers.jsonl              # ... or a JSONL/JSON/Parquet file of rows, relative to the YAML
    published: true                        # optional: also report the published (tsor13/spectrum) metrics
    extract: first_valid                   # optional: first_valid | regex | last_line (default: strict)
    extract_regex: "Answer: (\\d+)"         # with extract: regex (first group, else the whole match)
    format_instruction: Just the number.   # optional: appended to each prompt (last user turn)

Items use the training row schema (``prompt`` string or chat messages, ``references``,
optional ``weights``; see :mod:`spectrum_tune.training.data`). An item with one reference is a closed
(accuracy) item. Instead of, or as well as, ``references`` an item may give a ``validator`` for
valid sets too large to list:

* ``{int_range: {min: 0, max: 999}}`` -- the normalised answer is a canonical integer in [min, max]
  ("07", "+7" are not; ``lenient: true`` accepts them);
* ``{regex: "[a-z]+"}`` -- full match, case-insensitive, on the normalised answer;
* ``{one_of_file: names.txt}`` -- membership in a list file (one answer per line, relative to the YAML).

(See :mod:`spectrum_tune.evaluation.validators`; ``extract`` is :mod:`spectrum_tune.evaluation.extract`.)

Normalisation is :func:`spectrum_tune.evaluation.metrics.normalize_answer`. A sample is valid if it is one
of the references or passes the validator. Validator-only items get validity, yield, unique%
and collision; coverage and divergences need a listed support (``references``).
An item with only a ``prompt`` is a free-text item (only free-text spread metrics apply).

Steer items (in-context steerability, kind ``steer``) instead hold
``{description?, examples: [...outputs shown in context...], heldout: [...outputs to score...],
k: [0, 1, 4, 16]}``; the NLL of each held-out output is measured after the first ``k``
examples. ``k`` defaults to those of [0, 1, 4, 16] that do not exceed the number of examples.

Overtone items add ``viewpoints`` (kind ``overtone``: per-response viewpoint coverage, :mod:`.overtone`).

``kind`` is inferred when omitted: steer items -> steer; viewpoints -> overtone; no references and
no validator -> freetext; every item with one reference -> closed; any non-uniform weights -> distribution;
otherwise open. A declared kind must agree with the items (open and distribution are
interchangeable).

Suites are folders of task files: ``--tasks spread`` loads ``eval/spread/*.yaml``, where
``eval/`` is ``$SPECTRUM_TUNE_EVAL_DIR`` if set, else the ``eval/`` folder beside the package
(the repository root). ``--tasks path/to/task.yaml`` (or a folder) loads files directly, and a
benchmark name or ``hub:HUB_ID`` loads a public benchmark (:mod:`spectrum_tune.evaluation.benchmarks`).
Every problem raises :class:`~spectrum_tune.training.data.DataError` naming the file and the field.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..errors import SpectrumError
from ..training.data import DataError, _validate_prompt, _validate_weights, read_rows
from .extract import readout_options
from .items import DEFAULT_MAX_NEW_TOKENS, DEFAULT_SAMPLES, DEFAULT_STOP, Item, Task
from .overtone import parse_viewpoints
from .validators import Validator, parse_validator

__all__ = [
    "DEFAULT_K",
    "EVAL_DIR_ENV",
    "Item",
    "Task",
    "Validator",
    "eval_dir",
    "load_task",
    "resolve_tasks",
]

EVAL_DIR_ENV = "SPECTRUM_TUNE_EVAL_DIR"
SPLITS = ("heldout", "tuned")
KINDS = ("open", "closed", "distribution", "steer", "freetext", "overtone")
DEFAULT_K = (0, 1, 4, 16)

TASK_FIELDS = {
    "name",
    "description",
    "split",
    "kind",
    "items",
    "items_file",
    "samples",
    "max_new_tokens",
    "stop",
    "temperature",
    "top_p",
    "published",
    "extract",
    "extract_regex",
    "format_instruction",
}
ITEM_FIELDS = {"prompt", "references", "weights", "validator", "viewpoints"}
STEER_FIELDS = {"description", "examples", "heldout", "k"}


def _error(where: str, name: str, problem: str) -> DataError:
    return DataError(where, f"field '{name}': {problem}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _string_list(value: Any, where: str, name: str) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise _error(where, name, "must be a non-empty list of non-empty strings")
    return list(value)


def _steer_item(row: dict[str, Any], where: str) -> Item:
    unknown = set(row) - STEER_FIELDS
    if unknown:
        raise _error(where, sorted(unknown)[0], f"unknown steer item field (allowed: {sorted(STEER_FIELDS)})")
    for required in ("examples", "heldout"):
        if required not in row:
            raise _error(where, required, "missing (steer items need examples and heldout)")
    examples = _string_list(row["examples"], where, "examples")
    heldout = _string_list(row["heldout"], where, "heldout")
    description = row.get("description")
    if description is not None and (not isinstance(description, str) or not description):
        raise _error(where, "description", "must be a non-empty string")
    if "k" in row:
        ks = row["k"]
        if not isinstance(ks, list) or not ks or not all(_is_int(k) and k >= 0 for k in ks):
            raise _error(where, "k", "must be a non-empty list of integers >= 0")
        if max(ks) > len(examples):
            raise _error(where, "k", f"k={max(ks)} needs more than the {len(examples)} examples given")
    else:
        ks = [k for k in DEFAULT_K if k <= len(examples)]
    return Item(where, description=description, examples=examples, heldout=heldout, k=sorted(set(ks)))


def _item(row: Any, where: str, base: Path) -> Item:
    """Validate one item row (training-row schema, a validator, a free-text prompt or a steer item)."""
    if not isinstance(row, dict):
        raise DataError(where, "an item must be a mapping")
    if "heldout" in row or "examples" in row:
        return _steer_item(row, where)
    unknown = set(row) - ITEM_FIELDS
    if unknown:
        raise _error(where, sorted(unknown)[0], f"unknown item field (allowed: {sorted(ITEM_FIELDS)})")
    if "prompt" not in row:
        raise _error(where, "prompt", "missing")
    prompt = _validate_prompt(row["prompt"], where)
    validator = parse_validator(row["validator"], where, base) if "validator" in row else None
    references: list[str] = []
    if "references" in row:
        references = _string_list(row["references"], where, "references")
        if len(set(references)) != len(references):
            raise _error(where, "references", "has duplicate entries")
    elif "weights" in row:
        raise _error(where, "weights", "given without 'references'")
    weights = _validate_weights(row.get("weights"), len(references), where) if references else []
    viewpoints = parse_viewpoints(row["viewpoints"], where) if "viewpoints" in row else []
    return Item(
        where,
        prompt=prompt,
        references=references,
        weights=weights,
        validator=validator,
        viewpoints=viewpoints,
    )


def _infer_kind(items: list[Item]) -> str:
    if any(item.is_steer for item in items):
        return "steer"
    if any(item.viewpoints for item in items):
        return "overtone"
    if all(item.is_freetext for item in items):
        return "freetext"
    if all(item.is_closed for item in items):
        return "closed"
    if any(item.weights and not np.allclose(item.weights, item.weights[0]) for item in items):
        return "distribution"
    return "open"


def _check_kind(declared: str, items: list[Item], where: str) -> str:
    steer = [item.is_steer for item in items]
    if any(steer) and not all(steer):
        raise _error(where, "items", "mixes steer items with prompt items")
    inferred = _infer_kind(items)
    compatible = {declared, inferred} <= {"open", "distribution"} or declared == inferred
    if not compatible:
        raise _error(where, "kind", f"is '{declared}' but the items make it '{inferred}'")
    return declared


def _positive_int(data: dict[str, Any], name: str, default: int, where: str) -> int:
    value = data.get(name, default)
    if not _is_int(value) or value < 1:
        raise _error(where, name, f"must be a positive integer, got {value!r}")
    return value


def load_task(path: str | Path, suite: str | None = None) -> Task:
    """Load and validate one task YAML file."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise DataError(where, "no such task file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise DataError(where, f"malformed YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise DataError(where, "a task file must be a YAML mapping")
    unknown = set(data) - TASK_FIELDS
    if unknown:
        raise _error(where, sorted(unknown)[0], f"unknown task field (allowed: {sorted(TASK_FIELDS)})")
    name = data.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name or ""):
        raise _error(where, "name", "missing or not a simple name (letters, digits, _ . -)")
    if data.get("split") not in SPLITS:
        raise _error(where, "split", f"must be one of {list(SPLITS)}, got {data.get('split')!r}")
    if "kind" in data and data["kind"] not in KINDS:
        raise _error(where, "kind", f"must be one of {list(KINDS)}, got {data['kind']!r}")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise _error(where, "description", "must be a string")
    if ("items" in data) == ("items_file" in data):
        raise _error(where, "items", "give exactly one of 'items' and 'items_file'")
    if "items" in data:
        if not isinstance(data["items"], list):
            raise _error(where, "items", "must be a list of item rows")
        rows = [(f"{where}: items[{i}]", row) for i, row in enumerate(data["items"])]
    else:
        if not isinstance(data["items_file"], str):
            raise _error(where, "items_file", "must be a file path")
        items_path = path.parent / data["items_file"]
        if not items_path.is_file():
            raise _error(where, "items_file", f"no such file {items_path}")
        rows = list(read_rows(items_path))
    items = [_item(row, row_where, path.parent) for row_where, row in rows]
    if not items:
        raise _error(where, "items", "is empty")
    kind = _check_kind(data["kind"], items, where) if "kind" in data else _infer_kind(items)
    sampling = {key: data.get(key) for key in ("temperature", "top_p")}  # None: the run's (default 1.0)
    for key, top in (("temperature", float("inf")), ("top_p", 1.0)):
        if (value := sampling[key]) is not None and (type(value) not in (int, float) or not 0 < value <= top):
            raise _error(where, key, f"must be a number > 0 (top_p at most 1), got {value!r}")
    stop = data.get("stop", list(DEFAULT_STOP))
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise _error(where, "stop", "must be a list of non-empty strings")
    published, extract, pattern = readout_options(data, items, where)
    return Task(
        name=name,
        suite=suite or path.parent.name,
        split=data["split"],
        kind=kind,
        path=path,
        items=items,
        description=description,
        samples=_positive_int(data, "samples", DEFAULT_SAMPLES, where),
        max_new_tokens=_positive_int(data, "max_new_tokens", DEFAULT_MAX_NEW_TOKENS, where),
        stop=list(stop),
        published=published,
        extract=extract,
        extract_pattern=pattern,
        **sampling,
    )


# --------------------------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------------------------


def eval_dir() -> Path:
    """``$SPECTRUM_TUNE_EVAL_DIR``, else ``eval/`` in the repository root (the package's parent)."""
    env = os.environ.get(EVAL_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "eval"


def _task_files(folder: Path, label: str) -> list[Path]:
    files = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not files:
        raise SpectrumError(f"task suite '{label}' ({folder}) has no task files (*.yaml)")
    return files


def _has_task_files(folder: Path) -> bool:
    return any(folder.glob("*.yaml")) or any(folder.glob("*.yml"))


def _is_suite_name(spec: str) -> bool:
    """A bare name of a suite in ``eval/`` (a folder of the same name without task files, such as
    the repository's ``benchmarks/`` scripts, does not hide the ``eval/benchmarks`` suite)."""
    return "/" not in spec and (eval_dir() / spec).is_dir()


def resolve_tasks(specs: Sequence[str], split: str = "all") -> list[Task]:
    """Load the tasks named by suite names, folders or YAML files, keeping ``split`` (or all).

    Raises :class:`SpectrumError` for an unknown suite, an empty suite, duplicate task names
    or a split filter that leaves nothing.
    """
    if split not in (*SPLITS, "all"):
        raise SpectrumError(f"--split must be heldout, tuned or all, got '{split}'")
    if not specs:
        raise SpectrumError("no tasks given (--tasks SUITE_OR_FILE ...)")
    from .benchmarks import is_benchmark, load_benchmark

    tasks: list[Task] = []
    for spec in specs:
        candidate = Path(spec)
        if is_benchmark(spec) and not candidate.exists():
            tasks.extend(load_benchmark(spec))
        elif candidate.is_file():
            tasks.append(load_task(candidate))
        elif candidate.is_dir() and not (_is_suite_name(spec) and not _has_task_files(candidate)):
            tasks.extend(load_task(f, candidate.name) for f in _task_files(candidate, spec))
        elif candidate.suffix in {".yaml", ".yml"}:
            raise SpectrumError(f"task file '{spec}' does not exist")
        else:
            root = eval_dir()
            folder = root / spec
            if "/" in spec or not folder.is_dir():
                known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
                raise SpectrumError(
                    f"unknown task suite '{spec}' (suites in {root}: {', '.join(known) or 'none'})"
                )
            tasks.extend(load_task(f, spec) for f in _task_files(folder, spec))
    seen: dict[str, Path] = {}
    for task in tasks:
        if task.name in seen and seen[task.name] != task.path:
            raise SpectrumError(f"task name '{task.name}' is used by both {seen[task.name]} and {task.path}")
        seen[task.name] = task.path
    unique = list({task.name: task for task in tasks}.values())  # the same file given twice runs once
    kept = [task for task in unique if split == "all" or task.split == split]
    if not kept:
        raise SpectrumError(f"no task with split '{split}' among {len(unique)} loaded task(s)")
    return kept
