"""The rows a data report reads: a training file (or plain-text rows) as parallel lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SpectrumError

NGRAMS = (2, 4)  # the same character n-grams as the harness's TF-IDF embeddings
CHUNK = 4096  # rows per chunk in the streaming passes (bounds peak memory)


def _prompt_text(prompt: Any) -> str:
    if isinstance(prompt, list):
        return "\n".join(message["content"] for message in prompt)
    return str(prompt or "")


def row_text(prompt: Any, references: Sequence[str]) -> str:
    """The text a row is compared by: prompt contents, then one reference per line."""
    return "\n".join([_prompt_text(prompt), *references]).strip("\n")


@dataclass
class Rows:
    """The dataset as parallel lists (the report touches every row several times)."""

    prompts: list[Any]
    references: list[list[str]]
    weights: list[list[float]]
    raw: list[dict[str, Any]] | None = None  # --text-field: the original objects, for selected.jsonl

    def __len__(self) -> int:
        return len(self.prompts)

    def texts(self) -> list[str]:
        return [row_text(p, r) for p, r in zip(self.prompts, self.references, strict=True)]

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` in the training schema (what ``tokenize_group`` and ``selected.jsonl`` take)."""
        if self.raw is not None:
            return self.raw[i]
        return {"prompt": self.prompts[i], "references": self.references[i], "weights": self.weights[i]}


def load_rows(paths: Sequence[str], text_field: str | None = None) -> Rows:
    """Anything ``load_multiref`` accepts, or plain-text JSONL/JSON/Parquet with ``text_field``."""
    if text_field is None:
        from ..training.data import load_multiref

        dataset = load_multiref(list(paths))
        rows = Rows(dataset["prompt"], dataset["references"], dataset["weights"])
        # in-context rows keep their outputs in the prompt messages and have no references
        return rows
    from ..training.data import DataError, read_rows

    texts, raw = [], []
    for path in paths:
        for where, row in read_rows(path):
            text = row.get(text_field) if isinstance(row, dict) else None
            if not isinstance(text, str) or not text:
                raise DataError(where, f"field '{text_field}' must be a non-empty string")
            texts.append(text)
            raw.append(row)
    if not texts:
        raise SpectrumError(f"{', '.join(paths)}: no rows")
    return Rows([""] * len(texts), [[t] for t in texts], [[1.0]] * len(texts), raw=raw)


def _progress(iterable: Any, enabled: bool, **kwargs: Any) -> Any:
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not enabled, **kwargs)


def _chunks(n: int, size: int = CHUNK) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))
