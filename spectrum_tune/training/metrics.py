"""What the trainer logs about the spectrum terms of a batch, averaged over every rank's groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["group_metric_means"]


def group_metric_means(gather: Callable[[torch.Tensor], torch.Tensor], terms: Any,
                       single: torch.Tensor) -> dict[str, float]:
    """``spectrum/mass`` (the references' total probability), ``spectrum/kl`` and
    ``spectrum/q_entropy``, each the mean over the multi-reference groups of all ranks (``gather``
    collects a tensor from every rank); empty when no rank has such a group."""
    multi = ~single
    groups = gather(multi.sum()).sum()
    if groups == 0:
        return {}
    values = {"mass": (-terms.mass).exp(), "kl": terms.match, "q_entropy": terms.q_entropy}
    return {
        f"spectrum/{name}": (gather(torch.where(multi, value.detach(), 0.0).sum()).sum() / groups).item()
        for name, value in values.items()
    }
