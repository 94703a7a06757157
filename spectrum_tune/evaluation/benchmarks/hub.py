"""Rows of a Hub dataset through ``datasets.load_dataset(hub_id)``, with one-line errors."""

from __future__ import annotations

from typing import Any

from ...errors import SpectrumError

__all__ = ["hub_rows"]


def hub_rows(hub_id: str, split: str, **kwargs: Any) -> list[dict[str, Any]]:
    """All rows of ``hub_id``'s ``split`` as dicts (the real Hub path; tests point it at fixtures).

    Needs Hub access, or a local ``datasets`` cache with ``HF_DATASETS_OFFLINE=1``.
    """
    from datasets import load_dataset

    try:
        dataset = load_dataset(hub_id, split=split, **kwargs)
    except Exception as error:  # connection, gating, missing split: all mean "cannot load"
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise SpectrumError(
            f"cannot load benchmark dataset '{hub_id}' (split '{split}'): {reason} "
            "(it is read from the Hugging Face Hub: check network access and `huggingface-cli login`)"
        ) from None
    return [dict(row) for row in dataset]
