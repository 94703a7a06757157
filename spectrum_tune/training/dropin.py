"""What lets SpectrumTrainer take every batch and dataset `trl.SFTTrainer` takes.

A dataset may hold TRL single-target rows (prepared by TRL, collated by TRL's collator, trained
with SFTTrainer's own loss) and spectrum rows (multi-reference groups, in-context sequences). These
helpers join the two kinds into one dataset, turn a TRL batch into K = 1 groups where the
spectrum path must score it (GEM), build logits for `compute_metrics`, and collect the MoE
router loss of the spectrum path's forwards.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import torch

from .fields import TEMPLATE_COLUMN
from .tokenize import tokenize_group

__all__ = [
    "GROUP_COLUMNS",
    "SINGLE_COLUMNS",
    "TemplateTokenizer",
    "as_groups",
    "batch_items",
    "collect_aux_loss",
    "eval_logits",
    "join_datasets",
    "label_count",
    "tokenize_row",
]

GROUP_COLUMNS = ["prompt_ids", "completion_ids", "completion_mask", "weights"]
SINGLE_COLUMNS = ["input_ids", "labels"]


class TemplateTokenizer:
    """A tokenizer whose `apply_chat_template` always gets a row's `tools` / template kwargs.

    The tokenisation code renders prompts and references with the plain tokenizer API; wrapping
    the tokenizer passes a row's extra template arguments without changing that code.
    """

    def __init__(self, tokenizer: Any, template_kwargs: dict[str, Any]):
        self._tokenizer = tokenizer
        self._template_kwargs = template_kwargs

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tokenizer, name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._tokenizer(*args, **kwargs)

    def apply_chat_template(self, *args: Any, **kwargs: Any) -> Any:
        return self._tokenizer.apply_chat_template(*args, **{**self._template_kwargs, **kwargs})


def tokenize_row(row: dict[str, Any], tokenizer: Any, max_length: int | None) -> dict[str, Any]:
    """:func:`tokenize_group` of a validated spectrum row, its tools / template kwargs applied."""
    template_kwargs = json.loads(row.get(TEMPLATE_COLUMN) or "{}")
    wrapped = TemplateTokenizer(tokenizer, template_kwargs) if template_kwargs else tokenizer
    return tokenize_group(row, wrapped, max_length)


def join_datasets(groups: Any, single: Any) -> Any:
    """One dataset of tokenised groups and TRL-prepared rows, each kind's columns empty on the other.

    The collator tells them apart by ``completion_ids`` (empty on a TRL row).
    """
    from datasets import Features, List, Value, concatenate_datasets

    ids = List(Value("int64"))
    features = Features(
        {
            "input_ids": ids,
            "labels": ids,
            "prompt_ids": ids,
            "completion_ids": List(ids),
            "completion_mask": List(ids),
            "weights": List(Value("float64")),
        }
    )
    groups = groups.select_columns(GROUP_COLUMNS).map(
        lambda _: {"input_ids": [], "labels": []}, desc="Joining groups"
    )
    single = single.select_columns(SINGLE_COLUMNS).map(
        lambda _: {"prompt_ids": [], "completion_ids": [], "completion_mask": [], "weights": []},
        desc="Joining single-target rows",
    )
    return concatenate_datasets([groups.cast(features), single.cast(features)])


def label_count(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Loss tokens of a TRL batch, counted as TRL counts them (labels shifted by one)."""
    return (batch["labels"][..., 1:] != -100).sum()


def batch_items(batch: dict[str, Any]) -> torch.Tensor:
    """A SpectrumCollator batch's loss items: its groups' mean completion lengths plus its TRL rows'
    loss tokens (a float: the lengths are means)."""
    if "num_refs" not in batch:
        return label_count(batch).float()
    items = batch["loss_denominator"].sum()
    return items + label_count(batch["sft"]) if "sft" in batch else items


def as_groups(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A TRL batch as K = 1 groups in the spectrum collator's layout (for the GEM path)."""
    rows = batch["input_ids"].size(0)
    device = batch["input_ids"].device
    ones = torch.ones(rows, 1, device=device)
    return {
        "input_ids": batch["input_ids"],
        "attention_mask": batch["attention_mask"],
        "labels": batch["labels"],
        "group_index": torch.arange(rows, device=device),
        "slot_index": torch.zeros(rows, dtype=torch.long, device=device),
        "weights": ones,
        "ref_mask": ones.bool(),
        "num_refs": torch.ones(rows, dtype=torch.long, device=device),
        "loss_denominator": (batch["labels"][:, 1:] != -100).sum(dim=-1).float(),
    }


def eval_logits(model: torch.nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Full logits and labels of every sequence of a spectrum batch (and its TRL rows), for metrics.

    Training never builds them (the fused head); `compute_metrics` and `preprocess_logits_for_metrics`
    get one row per sequence: each reference of each group, then the batch's TRL rows, padded with
    -100 to one width.
    """
    parts = [batch] + ([batch["sft"]] if "sft" in batch else [])
    logits, labels = [], []
    for part in parts:
        mask = part.get("attention_mask")
        logits.append(model(input_ids=part["input_ids"], attention_mask=mask, use_cache=False).logits)
        labels.append(part["labels"])
    width = max(t.size(1) for t in labels)
    logits = torch.cat(
        [torch.nn.functional.pad(t, (0, 0, 0, width - t.size(1)), value=-100.0) for t in logits]
    )
    labels = torch.cat([torch.nn.functional.pad(t, (0, width - t.size(1)), value=-100) for t in labels])
    return logits, labels


@contextlib.contextmanager
def collect_aux_loss(module: torch.nn.Module, enabled: bool) -> Iterator[list[torch.Tensor]]:
    """Collect the MoE router loss (``outputs.aux_loss``) of every forward of ``module``."""
    found: list[torch.Tensor] = []
    if not enabled:
        yield found
        return

    def keep(_module: Any, _args: Any, output: Any) -> None:
        aux = getattr(output, "aux_loss", None)
        if aux is not None:
            found.append(aux)

    handle = module.register_forward_hook(keep)
    try:
        yield found
    finally:
        handle.remove()
