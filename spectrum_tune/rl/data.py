"""RL data: prompt rows for GRPO, pair rows for DPO, read from JSONL/JSON/Parquet files, eval task
YAML files (their items are prompt rows with valid sets) or Hub datasets; errors name file:line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import SpectrumError
from ..training.data import DataError, _validate_prompt, read_rows

__all__ = ["PAIR_COLUMNS", "file_rows", "load_pair_rows", "load_prompt_rows"]

PROMPT_COLUMNS = ("prompt", "references", "weights", "validator", "answer")
PAIR_COLUMNS = ("prompt", "chosen", "rejected")


def _validator_spec(item: Any, task_path: Path) -> dict[str, Any] | None:
    if item.validator is None:
        return None
    spec = item.validator.spec
    if item.validator.kind == "one_of_file":  # rewards resolve list files against the working directory
        spec = str((task_path.parent / spec).resolve())
    return {item.validator.kind: spec}


def file_rows(name: str, split: str = "train") -> list[tuple[str, dict[str, Any]]]:
    """``(where, row)`` pairs of a data file, an eval task file or a Hub dataset split."""
    path = Path(name)
    if path.suffix.lower() in {".yaml", ".yml"}:  # an eval task file: its items are prompt rows
        from ..evaluation.tasks import load_task

        task = load_task(path)
        return [
            (
                item.where,
                {
                    "prompt": item.prompt,
                    "references": item.references or None,
                    "weights": item.weights or None,
                    "validator": _validator_spec(item, path),
                },
            )
            for item in task.items
            if item.prompt is not None
        ]
    if path.suffix.lower() in {".jsonl", ".json", ".parquet"} or path.exists():
        rows = list(read_rows(path))
    else:  # a Hub dataset id (needs network), as everywhere else in the toolkit
        from datasets import load_dataset

        rows = [
            (f"{name}[{split}] row {i + 1}", row) for i, row in enumerate(load_dataset(name, split=split))
        ]
    for where, row in rows:
        if not isinstance(row, dict):
            raise DataError(where, "a row must be a JSON object")
    return rows


def load_prompt_rows(name: str, split: str = "train") -> Any:
    """GRPO training rows: ``prompt`` plus the columns the rewards read (``references``,
    ``weights``, ``validator``, ``answer``); other columns are kept. Validators are stored as
    JSON strings so rows with different validator kinds share one Arrow column."""
    from datasets import Dataset

    rows = []
    for where, row in file_rows(name, split):
        if "prompt" not in row:
            raise DataError(where, "missing field 'prompt'")
        clean = dict(row)
        clean["prompt"] = _validate_prompt(row["prompt"], where)
        references = row.get("references")
        if references is not None and (not isinstance(references, list) or not references):
            raise DataError(where, "'references' must be a non-empty list")
        weights = row.get("weights")
        if weights is not None and (not isinstance(weights, list) or len(weights) != len(references or [])):
            raise DataError(where, "'weights' must be a list with one weight per reference")
        if isinstance(row.get("validator"), dict):
            clean["validator"] = json.dumps(row["validator"], sort_keys=True)
        rows.append(clean)
    if not rows:
        raise SpectrumError(f"dataset '{name}' has no rows")
    for column in PROMPT_COLUMNS:  # one schema across rows: absent columns become nulls
        if any(column in row for row in rows):
            for row in rows:
                row.setdefault(column, None)
    return Dataset.from_list(rows)


def load_pair_rows(name: str, split: str = "train") -> Any:
    """DPO rows ``{prompt, chosen, rejected}`` (standard or conversational); other columns dropped."""
    from datasets import Dataset

    rows = []
    for where, row in file_rows(name, split):
        missing = [column for column in PAIR_COLUMNS if column not in row]
        if missing:
            raise DataError(where, f"missing field '{missing[0]}' (DPO rows need prompt, chosen, rejected)")
        rows.append({column: row[column] for column in PAIR_COLUMNS})
    if not rows:
        raise SpectrumError(f"dataset '{name}' has no preference pairs")
    return Dataset.from_list(rows)
