"""Pure loss math for multi-reference targets (see DESIGN.md, "The loss").

For a group (one context x with references y_1..y_K and target weights w) let
``s_k = log p(y_k | x)`` be the summed token log-probabilities of each complete reference,
``q = softmax(s)`` and ``M = logsumexp(s)``. The spectrum loss is

    L = alpha * (-M) + beta * KL(w || q)

With alpha = beta = 1 it equals the weighted multi-reference NLL ``-sum_k w_k s_k`` minus the
constant ``H(w)``; with K = 1 it is the sequence NLL ``-s_1``. Its gradient is
``dL/ds_k = -alpha * q_k + beta * (q_k - w_k)``, which lets large groups be trained in two
passes at constant memory (see :func:`spectrum_coefficients`).

Everything here is a pure function of tensors: no model, no trainer state.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "SpectrumLossOutput",
    "normalize_weights",
    "sequence_logps",
    "spectrum_coefficients",
    "spectrum_loss",
    "spectrum_loss_per_group",
]


@dataclass
class SpectrumLossOutput:
    """Per-group terms of the spectrum loss, each a float32 tensor of shape ``[G]``."""

    loss: torch.Tensor
    """``alpha * mass + beta * match`` per group."""
    mass: torch.Tensor
    """``-M = -logsumexp(s)``: minus the log of the mass the model puts on the valid set."""
    match: torch.Tensor
    """``KL(w || q)``: how far the model's spread over the valid set is from the target."""
    q_entropy: torch.Tensor
    """Entropy of ``q``, the model's distribution renormalised to the valid set."""


def normalize_weights(weights: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Return float32 target weights that sum to one over the real references of each group.

    Padding slots (``mask`` False) get weight 0. A group whose real weights sum to zero (or
    that is all padding) is an error: the loader rejects such rows, so reaching here is a bug.
    """
    weights = torch.where(mask, weights.float(), torch.zeros((), device=weights.device))
    if (weights < 0).any():
        raise ValueError("target weights must be non-negative")
    totals = weights.sum(dim=-1, keepdim=True)
    if (totals <= 0).any():
        raise ValueError("every group needs at least one reference with positive weight")
    return weights / totals


def sequence_logps(per_token_logps: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Sum per-token log-probs over the positions in ``loss_mask``, accumulating in float32.

    Args:
        per_token_logps: ``[N, T]`` log-probabilities of each next token (any float dtype).
        loss_mask: ``[N, T]`` bool or 0/1, True on the completion tokens (end-of-turn included).

    Returns:
        ``[N]`` float32 sequence log-probabilities ``log p(completion | prompt)``.
    """
    if per_token_logps.shape != loss_mask.shape:
        raise ValueError(
            f"per_token_logps {tuple(per_token_logps.shape)} and loss_mask "
            f"{tuple(loss_mask.shape)} must have the same shape"
        )
    masked = torch.where(loss_mask.bool(), per_token_logps.float(), 0.0)
    return masked.sum(dim=-1)


def _check_shapes(logps: torch.Tensor, weights: torch.Tensor, mask: torch.Tensor) -> None:
    if logps.dim() != 2 or logps.shape != weights.shape or logps.shape != mask.shape:
        raise ValueError(
            "logps, weights and mask must all be [G, K]; got "
            f"{tuple(logps.shape)}, {tuple(weights.shape)}, {tuple(mask.shape)}"
        )
    if not mask.any(dim=-1).all():
        raise ValueError("every group needs at least one real reference (mask all False)")


def spectrum_loss_per_group(
    logps: torch.Tensor,
    weights: torch.Tensor,
    mask: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 1.0,
) -> SpectrumLossOutput:
    """Spectrum loss and its terms for each group, in float32.

    Args:
        logps: ``[G, K]`` sequence log-probs ``s_k``; padding slots may hold anything finite
            or not (they are masked out before any arithmetic that could propagate them).
        weights: ``[G, K]`` non-negative target weights (normalised here over real slots).
        mask: ``[G, K]`` bool, True for real references.
        alpha: weight of the mass term ``-logsumexp(s)`` (accuracy).
        beta: weight of the match term ``KL(w || q)`` (spread).
    """
    _check_shapes(logps, weights, mask)
    mask = mask.bool()
    w = normalize_weights(weights, mask)
    neg_inf = torch.tensor(float("-inf"), device=logps.device)
    s = torch.where(mask, logps.float(), neg_inf)
    log_mass = torch.logsumexp(s, dim=-1)  # M
    log_q = s - log_mass.unsqueeze(-1)
    # 0 * log 0 terms are defined as 0; torch.where keeps NaN/inf out of the gradient too.
    positive = w > 0
    log_w = torch.log(torch.where(positive, w, torch.ones_like(w)))
    safe_log_q = torch.where(mask, log_q, torch.zeros_like(log_q))
    match = torch.where(positive, w * (log_w - safe_log_q), torch.zeros_like(w)).sum(dim=-1)
    q = torch.where(mask, log_q.exp(), torch.zeros_like(log_q))
    q_entropy = -torch.where(q > 0, q * safe_log_q, torch.zeros_like(q)).sum(dim=-1)
    mass = -log_mass
    return SpectrumLossOutput(loss=alpha * mass + beta * match, mass=mass, match=match, q_entropy=q_entropy)


def spectrum_loss(
    logps: torch.Tensor,
    weights: torch.Tensor,
    mask: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 1.0,
) -> torch.Tensor:
    """Mean over groups of ``alpha * (-logsumexp(s)) + beta * KL(w || softmax(s))``.

    The length normalisation (dividing by a group's mean completion length) is the
    trainer's job, not this function's. See :func:`spectrum_loss_per_group` for the shapes.
    """
    return spectrum_loss_per_group(logps, weights, mask, alpha, beta).loss.mean()


def spectrum_coefficients(
    logps: torch.Tensor,
    weights: torch.Tensor,
    mask: torch.Tensor,
    alpha: float = 1.0,
    beta: float = 1.0,
) -> torch.Tensor:
    """Exact gradient ``dL_g/ds_k = -alpha * q_k + beta * (q_k - w_k)`` per group, detached.

    This is what makes the two-pass update exact: with all ``s_k`` computed without grad,
    back-propagating ``sum_k c_k * s_k`` chunk by chunk gives the gradient of ``L_g``.
    Padding slots get 0.
    """
    _check_shapes(logps, weights, mask)
    mask = mask.bool()
    w = normalize_weights(weights, mask)
    s = torch.where(mask, logps.detach().float(), torch.tensor(float("-inf"), device=logps.device))
    q = torch.softmax(s, dim=-1)
    coefficients = -alpha * q + beta * (q - w)
    return torch.where(mask, coefficients, torch.zeros_like(coefficients))
