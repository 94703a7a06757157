"""Model calls per step that are the same on every rank, whatever each rank's groups.

Under DDP with buffer broadcasting, FSDP and ZeRO-3 every forward is a collective (a buffer
broadcast, a parameter all-gather), so a rank that makes fewer model calls in a step than another
leaves it waiting forever. How many calls a rank makes depends on its own data (how many
sequences, so chunks of ``spectrum_chunk_size``; whether its prompts can share a cache; whether it
has GEM rows at all), so the ranks agree on the counts with one all-reduce per step
(:func:`agree_counts`) and a rank with fewer real chunks runs empty ones (:func:`empty_chunk`):
one padding token, no label, so its loss contribution is exactly 0 while its forward and backward
are real calls.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

__all__ = ["agree_counts", "chunk_count", "empty_chunk"]


def chunk_count(rows: int, size: int) -> int:
    """Number of chunks of at most ``size`` rows that ``rows`` rows need."""
    return math.ceil(rows / size)


def agree_counts(counts: list[int], device: torch.device) -> list[int]:
    """The element-wise maximum of ``counts`` over all ranks (one all-reduce; as is on one process)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return list(counts)
    tensor = torch.tensor(counts, dtype=torch.long, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return [int(value) for value in tensor.tolist()]


def empty_chunk(device: torch.device, pad_token_id: int) -> list[torch.Tensor]:
    """``input_ids, attention_mask, labels`` of a one-token sequence with no loss token."""
    return [
        torch.full((1, 1), pad_token_id, dtype=torch.long, device=device),
        torch.ones((1, 1), dtype=torch.long, device=device),
        torch.full((1, 1), -100, dtype=torch.long, device=device),
    ]
