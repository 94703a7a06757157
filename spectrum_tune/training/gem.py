"""GEM: the entropy-regularised token loss of Li et al., "Preserving Diversity in Supervised
Fine-Tuning of Large Language Models" (ICLR 2025), as a drop-in for cross-entropy on one-answer rows.

The reference implementation is ``SFTTrainer.gem_loss`` in ``sft_trainer.py`` / ``sft_trainer_v2.py``
of github.com/liziniu/GEM. For next-token logits ``z`` (one position), label ``y`` and ``beta``::

    p = softmax(z)                    q = softmax(z / beta)            (q and w carry no gradient)
    w_v = 1                           (h = "linear")
    w_v = sigmoid(0.01 * (z_v - z_y)) (h = "logsigmoid")
    loss = -sum_v q_v * w_v * (log p_y - log p_v)

Because ``log p_y - log p_v = z_y - z_v`` the log-normaliser cancels: ``loss = sum_v q_v w_v (z_v - z_y)``
and its gradient is ``dloss/dz = q * w - (sum_v q_v w_v) * onehot(y)``; it never needs ``p``. With
``h = "linear"`` that is ``q - onehot(y)``, so ``beta = 1`` gives cross-entropy's gradient exactly (the
value is then ``CE - H(p)``), and smaller ``beta`` trains towards ``p ∝ p_data^beta``, a flatter
distribution (the authors advise 0.8-0.9 to fit closely, 0.6-0.7 for more diversity).

:func:`gem_token_loss` is the reference computation on full logits; :func:`chunked_gem_loss` takes
the final hidden states and the LM head instead and never builds the ``[tokens, vocab]`` logits
beyond one chunk of positions (a custom autograd function that recomputes each chunk in backward).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from packaging.version import Version

__all__ = ["GEM_H", "GemStats", "chunked_gem_loss", "gem_token_loss"]

GEM_H = ("linear", "logsigmoid")
# The reference's logsigmoid weighting: sigmoid(0.01 * (z_v - z_y)), a fixed scale in its code.
_LOGSIGMOID_SCALE = 0.01
# Logits elements per chunk when `chunk_size` is not given (64 MiB of fp32 per [chunk, V] buffer; a
# chunk holds about three). TRL's fused head tiles 4096 tokens x 32768 vocab in the compute dtype.
CHUNK_ELEMENTS = 2**24
# `torch.addmm(..., out_dtype=torch.float32)` from bf16/fp16 inputs (CUDA only)
_MM_OUT_DTYPE = Version(torch.__version__) >= Version("2.8.0")


def _check(beta: float, h: str) -> None:
    if not beta > 0:
        raise ValueError(f"GEM beta must be > 0, got {beta}")
    if h not in GEM_H:
        raise ValueError(f"GEM h must be one of {GEM_H}, got {h!r}")


def gem_token_loss(
    logits: torch.Tensor, labels: torch.Tensor, beta: float = 0.7, h: str = "linear", ignore_index: int = -100
) -> torch.Tensor:
    """Per-token GEM loss on full logits, written as the reference ``gem_loss`` (no shift, no mean).

    Args:
        logits: ``[..., V]`` next-token logits, already aligned with ``labels`` (bf16/fp16 are upcast).
        labels: ``[...]`` target ids; ``ignore_index`` positions get loss 0 and no gradient.

    Returns:
        ``[...]`` per-token losses, float32 (float64 for float64 logits).
    """
    _check(beta, h)
    logits = _upcast(logits)
    valid = labels != ignore_index
    index = torch.where(valid, labels, 0).unsqueeze(-1)
    with torch.no_grad():
        logits_diff = logits - logits.gather(-1, index)
        if h == "linear":
            weights = torch.ones_like(logits_diff)
        else:
            weights = torch.sigmoid(_LOGSIGMOID_SCALE * logits_diff)
    gene_log_probs = F.log_softmax(logits, dim=-1)
    q_probs = torch.exp(F.log_softmax(logits / beta, dim=-1)).detach()
    real_log_probs = gene_log_probs.gather(-1, index)
    loss = -torch.sum(q_probs * weights * (real_log_probs - gene_log_probs), dim=-1)
    return torch.where(valid, loss, 0.0)


class GemStats(NamedTuple):
    """Per-token outputs of :func:`chunked_gem_loss` with ``with_stats``; only ``loss`` has gradient."""

    loss: torch.Tensor
    entropy: torch.Tensor
    """Entropy of ``p = softmax(z)`` (for the trainer's ``entropy`` metric)."""
    log_prob: torch.Tensor
    """``log p_y``: minus the token NLL, to watch cross-entropy while training with GEM."""
    is_top1: torch.Tensor
    """Whether ``y`` is the first argmax of ``z`` (for ``mean_token_accuracy``)."""


def _upcast(x: torch.Tensor) -> torch.Tensor:
    # GEM's softmaxes run in float32 at least (float64 stays float64, for exact tests).
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Row-wise dot product as a batched matmul: no [n, V] product temporary.
    return torch.bmm(a.unsqueeze(1), b.unsqueeze(2)).view(-1)


def _chunk_logits(hidden, weight, bias, dtype) -> torch.Tensor:
    logits = hidden.to(dtype) @ weight.to(dtype).t()
    if bias is not None:
        logits = logits + bias.to(dtype)
    return _upcast(logits)


def _weighted_q(z: torch.Tensor, target: torch.Tensor, beta: float, h: str) -> torch.Tensor:
    """``q * w`` for one chunk of upcast logits (a fresh tensor, safe to modify)."""
    q = torch.softmax(z if beta == 1 else z / beta, dim=-1)
    if h == "logsigmoid":
        q.mul_(torch.sigmoid(_LOGSIGMOID_SCALE * (z - target.unsqueeze(-1))))
    return q


def _addmm_acc(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """``acc += a @ b`` into an fp32 ``acc`` without rounding each chunk's product to bf16/fp16 first."""
    if _MM_OUT_DTYPE and acc.device.type == "cuda" and a.dtype in (torch.float16, torch.bfloat16):
        torch.addmm(acc, a, b, out_dtype=torch.float32, out=acc)
    else:
        acc.add_((a @ b).to(acc.dtype))


class _ChunkedGem(torch.autograd.Function):
    """Per-token GEM loss of ``hidden @ weight.T + bias`` in chunks of positions.

    Forward keeps only its inputs (no logits); backward recomputes one chunk's logits at a time
    and applies the closed-form gradient ``q * w - (q . w) onehot(y)`` scaled by the upstream
    per-token gradient. Same GEMM count as TRL's fused CE head (1 forward, 1 recompute + 2 grads).
    Recomputing by hand instead of ``torch.utils.checkpoint`` per chunk avoids autograd's
    log_softmax/gather saved tensors (several [chunk, V] buffers) and a [V, H] grad per chunk.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, labels, beta, h, chunk_size, with_stats):
        ctx.set_materialize_grads(False)
        kind = hidden.device.type
        # The projection runs in the autocast dtype (as TRL's fused head), chosen here explicitly;
        # autocast itself is off inside, else it would also run the GEM dot products in bf16/fp16.
        dtype = torch.get_autocast_dtype(kind) if torch.is_autocast_enabled(kind) else hidden.dtype
        with torch.autocast(kind, enabled=False):
            return _ChunkedGem._run(ctx, hidden, weight, bias, labels, beta, h, chunk_size, with_stats, dtype)

    @staticmethod
    def _run(ctx, hidden, weight, bias, labels, beta, h, chunk_size, with_stats, dtype):
        device = hidden.device
        n = hidden.size(0)
        loss = torch.empty(n, device=device, dtype=torch.promote_types(dtype, torch.float32))
        entropy = torch.empty_like(loss) if with_stats else None
        log_prob = torch.empty_like(loss) if with_stats else None
        is_top1 = torch.empty(n, device=device, dtype=torch.bool) if with_stats else None
        for start in range(0, n, chunk_size):
            end = min(start + chunk_size, n)
            z = _chunk_logits(hidden[start:end], weight, bias, dtype)
            target = z.gather(-1, labels[start:end].unsqueeze(-1)).squeeze(-1)
            qw = _weighted_q(z, target, beta, h)
            # sum_v q_v w_v (z_v - z_y): the log-normaliser of p cancels out of the reference form.
            loss[start:end] = _dot(qw, z) - target * (1.0 if h == "linear" else qw.sum(-1))
            del qw
            if with_stats:
                lse = torch.logsumexp(z, dim=-1)
                p = z.sub(lse.unsqueeze(-1)).exp_()
                entropy[start:end] = lse - _dot(p, z)
                log_prob[start:end] = target - lse
                is_top1[start:end] = z.argmax(-1) == labels[start:end]  # first maximum, as TRL's is_top1
        ctx.save_for_backward(hidden, weight, bias, labels)
        ctx.settings = (beta, h, chunk_size, dtype)
        if with_stats:
            ctx.mark_non_differentiable(entropy, log_prob, is_top1)
        return loss, entropy, log_prob, is_top1

    @staticmethod
    def backward(ctx, grad_loss, *_):
        hidden, weight, bias, labels = ctx.saved_tensors
        beta, h, chunk_size, dtype = ctx.settings
        need_hidden, need_weight, need_bias = ctx.needs_input_grad[:3]
        if grad_loss is None:
            return (None,) * 8
        grad_hidden = torch.empty_like(hidden) if need_hidden else None
        # The head's gradients sum over chunks: accumulate in fp32, as TRL's fused head does.
        acc = torch.promote_types(weight.dtype, torch.float32)
        grad_weight = torch.zeros_like(weight, dtype=acc) if need_weight else None
        grad_bias = torch.zeros_like(bias, dtype=acc) if need_bias else None
        w = weight.to(dtype)
        for start in range(0, hidden.size(0), chunk_size):
            end = min(start + chunk_size, hidden.size(0))
            h_chunk = hidden[start:end].to(dtype)
            z = _chunk_logits(h_chunk, weight, bias, dtype)
            index = labels[start:end].unsqueeze(-1)
            grad = _weighted_q(z, z.gather(-1, index).squeeze(-1), beta, h)
            del z
            # d loss / dz = q*w - (sum q*w) onehot(y); sum q*w = 1 for the linear h.
            if h == "linear":
                grad.scatter_add_(-1, index, grad.new_full(index.shape, -1.0))
            else:
                grad.scatter_add_(-1, index, -grad.sum(-1, keepdim=True))
            grad.mul_(grad_loss[start:end].to(grad.dtype).unsqueeze(-1))
            grad = grad.to(dtype)
            if grad_hidden is not None:
                grad_hidden[start:end] = (grad @ w).to(hidden.dtype)
            if grad_weight is not None:
                _addmm_acc(grad_weight, grad.t(), h_chunk)
            if grad_bias is not None:
                grad_bias += grad.sum(0, dtype=acc)
        return (
            grad_hidden,
            grad_weight.to(weight.dtype) if grad_weight is not None else None,
            grad_bias.to(bias.dtype) if grad_bias is not None else None,
            None,
            None,
            None,
            None,
            None,
        )


def chunked_gem_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    labels: torch.Tensor,
    bias: torch.Tensor | None = None,
    beta: float = 0.7,
    h: str = "linear",
    chunk_size: int | None = None,
    with_stats: bool = False,
) -> torch.Tensor | GemStats:
    """Per-token GEM loss of the logits ``hidden @ weight.T + bias``, without building them all.

    Args:
        hidden: ``[M, H]`` final hidden states at the scored positions (select them first; there is
            no ``ignore_index`` here, so every row counts).
        weight, bias: the LM head, ``[V, H]`` and ``[V]`` (or None).
        labels: ``[M]`` next-token ids.
        chunk_size: positions per chunk; default ``CHUNK_ELEMENTS // V``.
        with_stats: also return the per-token entropy, log-prob and top-1 hit (no gradient).

    Under autocast the projection runs in the autocast dtype (as TRL's fused head); the GEM
    arithmetic is float32. Gradients equal :func:`gem_token_loss` on the full logits.

    Returns:
        ``[M]`` float32 losses (float64 for float64 inputs), or a :class:`GemStats` with ``with_stats``.
    """
    _check(beta, h)
    if hidden.dim() != 2 or labels.shape != hidden.shape[:1]:
        raise ValueError(
            f"hidden must be [M, H] and labels [M], got {tuple(hidden.shape)} and {tuple(labels.shape)}"
        )
    if chunk_size is None:
        chunk_size = max(1, CHUNK_ELEMENTS // weight.size(0))
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    loss, entropy, log_prob, is_top1 = _ChunkedGem.apply(
        hidden, weight, bias, labels, float(beta), h, int(chunk_size), with_stats
    )
    return GemStats(loss, entropy, log_prob, is_top1) if with_stats else loss
