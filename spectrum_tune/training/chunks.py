"""Model calls per step that are the same on every rank, whatever each rank's groups.

Under DDP with buffer broadcasting, FSDP and ZeRO-3 every forward is a collective (a buffer
broadcast, a parameter all-gather), so a rank that makes fewer model calls in a step than another
leaves it waiting forever. How many calls a rank makes depends on its own data (how many
sequences, so chunks of ``spectrum_chunk_size``; whether its prompts can share a cache; whether it
has GEM rows at all), so the ranks agree on the counts with one all-reduce per step
(:func:`agree_counts`) and a rank with fewer real chunks runs empty ones (:func:`empty_chunk`):
one padding token, no label, so its loss contribution is exactly 0 while its forward and backward
are real calls.

The same holds for the kinds of rows: a batch may hold multi-reference groups, TRL single-target
rows (scored by SFTTrainer's loss, which gathers metrics), or both, and each kind makes its own
model calls and collectives. The ranks agree on which kinds some rank holds (:func:`agree_counts`
with ``op="sum"``) and a rank without one runs its stand-in: :func:`empty_groups` (no group, so
only the agreed empty chunks) or a one-token TRL row with no label (:func:`empty_single`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.distributed as dist

from .dropin import as_groups

__all__ = ["agree_counts", "chunk_count", "empty_chunk", "empty_groups", "empty_single", "uniform_parts"]


def chunk_count(rows: int, size: int) -> int:
    """Number of chunks of at most ``size`` rows that ``rows`` rows need."""
    return math.ceil(rows / size)


def agree_counts(counts: list[int], device: torch.device, op: str = "max") -> list[int]:
    """The element-wise maximum (``op="sum"``: sum) of ``counts`` over all ranks (one all-reduce;
    as is on one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(counts)
    tensor = torch.tensor(counts, dtype=torch.long, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
    return [int(value) for value in tensor.tolist()]


def empty_chunk(device: torch.device, pad_token_id: int) -> list[torch.Tensor]:
    """``input_ids, attention_mask, labels`` of a one-token sequence with no loss token."""
    return [
        torch.full((1, 1), pad_token_id, dtype=torch.long, device=device),
        torch.ones((1, 1), dtype=torch.long, device=device),
        torch.full((1, 1), -100, dtype=torch.long, device=device),
    ]


def empty_groups(device: torch.device, prefix_sharing: bool) -> dict[str, torch.Tensor]:
    """A batch of no groups in :class:`~.collator.SpectrumCollator`'s layout (with its prefix
    columns when it shares prompts, so this rank does not veto sharing for the others)."""

    def rows(width: int, dtype: torch.dtype = torch.long) -> torch.Tensor:
        return torch.zeros((0, width), dtype=dtype, device=device)

    index = torch.zeros(0, dtype=torch.long, device=device)
    batch = {
        "input_ids": rows(1),
        "attention_mask": rows(1),
        "labels": rows(1),
        "group_index": index,
        "slot_index": index,
        "weights": rows(1, torch.float32),
        "ref_mask": rows(1, torch.bool),
        "num_refs": index,
        "loss_denominator": torch.zeros(0, device=device),
    }
    if prefix_sharing:
        batch.update(
            prefix_ids=rows(1), prefix_mask=rows(1), cont_ids=rows(2), cont_mask=rows(2), cont_labels=rows(2)
        )
    return batch


def empty_single(collate: Any, device: torch.device, pad_token_id: int) -> dict[str, Any]:
    """A TRL batch of one padding token with no label, collated by TRL's ``collate`` (so it has the
    keys the real TRL batches have): SFTTrainer's loss on it is an exact 0 with a real forward."""
    batch = collate([{"input_ids": [pad_token_id], "labels": [-100]}])
    return {key: value.to(device) if torch.is_tensor(value) else value for key, value in batch.items()}


def uniform_parts(
    inputs: dict[str, Any],
    gem: bool,
    collator: Any,
    pad_token_id: int | None,
    num_processes: int,
) -> tuple[list[dict[str, Any]] | None, dict[str, Any] | None, int]:
    """``(group parts, TRL rows, stand-ins)`` of a SpectrumTrainer batch, the same kinds on every rank.

    ``inputs`` is a batch of :class:`~.collator.SpectrumCollator` (groups, TRL rows under ``sft``,
    or TRL rows alone). The ranks agree (one all-reduce) on which kinds some rank holds; a rank
    without one gets its stand-in. ``parts`` is None when every rank holds TRL rows only and the
    loss is not GEM's (SFTTrainer's loss then applies as is); under GEM the TRL rows are a K = 1
    group part. ``stand-ins``: how many ranks score a TRL stand-in (for the token count).
    """
    groups = None if "num_refs" not in inputs else {k: v for k, v in inputs.items() if k != "sft"}
    sft = inputs if groups is None else inputs.get("sft")
    device = inputs["input_ids"].device
    held_groups, held_sft = agree_counts([int(groups is not None), int(sft is not None)], device, op="sum")
    if not held_groups and not gem:
        return None, None, 0
    sharing = getattr(collator, "prefix_sharing", False)
    parts = [empty_groups(device, sharing) if groups is None else groups] if held_groups else []
    if held_sft and gem:
        parts.append(empty_groups(device, sharing) if sft is None else as_groups(sft))
        return parts, None, 0
    if held_sft and sft is None:
        collate = getattr(collator, "sft_collator", None) or collator
        sft = empty_single(collate, device, pad_token_id or 0)
    return parts, sft, num_processes - held_sft if held_sft else 0
