"""What the trainer logs about the spectrum terms of a batch, averaged over every rank's groups."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

__all__ = ["group_metric_means", "log_group_metrics"]


def group_metric_means(
    gather: Callable[[torch.Tensor], torch.Tensor], terms: Any, single: torch.Tensor
) -> dict[str, float]:
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


def log_group_metrics(
    metrics: dict[str, list],
    gather: Callable[[torch.Tensor], torch.Tensor],
    mode: str,
    inputs: dict[str, Any],
    terms: Any,
    single: torch.Tensor,
    entropy_sum: torch.Tensor,
    top1_sum: torch.Tensor,
    total_train_tokens: int,
) -> int:
    """Append a batch of groups' metrics to ``metrics`` (TRL's ``_metrics[mode]``): token entropy and
    accuracy over every rank's loss tokens, :func:`group_metric_means`, and the running token count,
    which is returned (in training it grows by every rank's tokens)."""
    num_tokens = gather((inputs["labels"][:, 1:] != -100).sum()).sum()
    if num_tokens > 0:
        metrics["entropy"].append((gather(entropy_sum).sum() / num_tokens).item())
        metrics["mean_token_accuracy"].append((gather(top1_sum).sum() / num_tokens).item())
    for name, value in group_metric_means(gather, terms, single).items():
        metrics[name].append(value)
    if mode == "train":
        total_train_tokens += gather(inputs["attention_mask"].sum()).sum().item()
    metrics["num_tokens"] = [total_train_tokens]
    return total_train_tokens
