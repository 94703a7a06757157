"""SpectrumCollator: a batch of tokenised groups -> padded sequences plus group bookkeeping.

TRL single-target rows in the batch (no ``completion_ids``) are collated by TRL's own collator:
alone they make TRL's batch unchanged; beside groups they ride along under the key ``sft``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from .prefix import collate_prefix

__all__ = ["SpectrumCollator"]


class SpectrumCollator:
    """Flatten a batch of tokenised groups into right-padded sequences plus group bookkeeping.

    Output keys: ``input_ids``, ``attention_mask``, ``labels`` (``-100`` off the loss tokens),
    ``group_index`` ``[N]`` (which group each sequence belongs to), ``slot_index`` ``[N]``
    (its position in the group), ``weights`` and ``ref_mask`` ``[G, K_max]``, ``num_refs``
    ``[G]`` and ``loss_denominator`` ``[G]`` (the group's mean number of loss tokens, or 1).
    Rows without ``completion_ids`` go to ``sft_collator`` (TRL's): a batch of only such rows is
    its batch as is, otherwise it is added under ``sft``.
    """

    def __init__(
        self,
        pad_token_id: int,
        length_normalize: bool = True,
        prefix_sharing: bool = False,
        sft_collator: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
    ):
        self.pad_token_id = pad_token_id
        self.length_normalize = length_normalize
        self.prefix_sharing = prefix_sharing
        self.sft_collator = sft_collator

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        groups = [example for example in examples if example.get("completion_ids")]
        if len(groups) == len(examples):
            return self._collate_groups(groups)
        if self.sft_collator is None:
            raise ValueError("a row without completion_ids (a TRL row) and no sft_collator to collate it")
        # Only TRL's keys: the joined dataset's empty group columns would confuse its collator.
        keys = ("input_ids", "labels", "seq_lengths")
        singles = [
            {key: example[key] for key in keys if example.get(key) is not None}
            for example in examples
            if not example.get("completion_ids")
        ]
        sft = self.sft_collator(singles)
        if not groups:
            return sft
        return {**self._collate_groups(groups), "sft": sft}

    def _collate_groups(self, groups: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        sequences, label_masks, group_index, slot_index = [], [], [], []
        denominators = []
        max_refs = max(len(group["completion_ids"]) for group in groups)
        weights = torch.zeros(len(groups), max_refs)
        ref_mask = torch.zeros(len(groups), max_refs, dtype=torch.bool)
        for g, group in enumerate(groups):
            prompt = list(group["prompt_ids"])
            lengths = []
            for k, (completion, mask) in enumerate(
                zip(group["completion_ids"], group["completion_mask"], strict=True)
            ):
                sequences.append(prompt + list(completion))
                label_masks.append([0] * len(prompt) + list(mask))
                group_index.append(g)
                slot_index.append(k)
                lengths.append(sum(mask))
            count = len(group["completion_ids"])
            weights[g, :count] = torch.tensor(group["weights"], dtype=torch.float32)
            ref_mask[g, :count] = True
            denominators.append(sum(lengths) / count if self.length_normalize else 1.0)
        width = max(len(sequence) for sequence in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
        labels = torch.full((len(sequences), width), -100, dtype=torch.long)
        for row, (sequence, mask) in enumerate(zip(sequences, label_masks, strict=True)):
            ids = torch.tensor(sequence, dtype=torch.long)
            input_ids[row, : len(sequence)] = ids
            attention_mask[row, : len(sequence)] = 1
            labels[row, : len(sequence)] = torch.where(torch.tensor(mask, dtype=torch.bool), ids, -100)
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "labels": labels,
            "group_index": torch.tensor(group_index, dtype=torch.long),
            "slot_index": torch.tensor(slot_index, dtype=torch.long),
            "weights": weights,
            "ref_mask": ref_mask,
            "num_refs": ref_mask.sum(dim=-1),
            "loss_denominator": torch.tensor(denominators, dtype=torch.float32),
        }
        if self.prefix_sharing:
            prefix = collate_prefix(
                [list(group["prompt_ids"]) for group in groups],
                [list(c) for group in groups for c in group["completion_ids"]],
                [list(m) for group in groups for m in group["completion_mask"]],
                group_index,
                self.pad_token_id,
            )
            batch.update(prefix or {})
        return batch
