"""Per-example loss-gradient features through a small LoRA, randomly projected (for G-Vendi)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import SpectrumError
from .rows import Rows, _chunks, _progress


def _gradient_module(model: Any) -> Any:
    """The last MLP down-projection (or, failing that, the last Linear before the LM head).

    Being in the last block, everything after it is position-wise (residual, final norm, LM head),
    so its output gradient at a token depends on that token's loss only and back-propagation is
    cheap (it stops there; no parameter needs a gradient).
    """
    import torch

    head = model.get_output_embeddings()
    linears = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and m is not head]
    down = [m for n, m in linears if n.endswith("down_proj")]
    if down:
        return down[-1]
    if not linears:
        raise SpectrumError("the model has no Linear layer to take gradients at")
    return linears[-1][1]


Sequence_ = tuple[int, list[int], list[int], float]


def _sequences(rows: Rows, indices: Sequence[int], tokenizer: Any, max_length: int) -> list[Sequence_]:
    """``(row, ids, loss_mask, coefficient)`` per reference: the spectrum loss with alpha = beta = 1
    (the weighted multi-reference NLL ``-sum_k w_k s_k``) divided by the mean completion length."""
    from ..training.tokenize import tokenize_group

    sequences = []
    for position, index in enumerate(indices):
        group = tokenize_group(rows.row(index), tokenizer, max_length)
        lengths = [sum(mask) for mask in group["completion_mask"]]
        scale = max(1.0, float(np.mean(lengths)))
        parts = zip(group["completion_ids"], group["completion_mask"], group["weights"], strict=True)
        for ids, mask, weight in parts:
            full = group["prompt_ids"] + ids
            loss_mask = [0] * len(group["prompt_ids"]) + list(mask)
            loss_mask[0] = 0  # the first token has nothing to be predicted from
            if any(loss_mask):
                sequences.append((position, full, loss_mask, weight / scale))
    return sequences


def gradient_features(
    model: Any,
    tokenizer: Any,
    rows: Rows,
    indices: Sequence[int],
    *,
    dim: int = 256,
    rank: int = 8,
    seed: int = 0,
    batch_size: int = 16,
    max_length: int = 512,
    progress: bool = False,
) -> np.ndarray:
    """L2-normalised, randomly projected per-example loss gradients, shape ``(len(indices), dim)``.

    The parameter subset is a freshly initialised rank-``rank`` LoRA on the last MLP down-projection
    ``W`` (``W + B A``, ``A`` seeded Gaussian, ``B = 0``, as LESS / G-Vendi-style data selection do):
    at ``B = 0`` the model is unchanged and ``dL/dB = sum_t g_t (A x_t)^T`` (``g_t`` the gradient at
    the layer's output, ``x_t`` its input) while ``dL/dA = 0``. That gradient (``out x rank``) is
    projected with a seeded Rademacher matrix to ``dim`` and L2-normalised. The loss per row is the
    weighted multi-reference NLL over its references, scaled by the mean completion length.
    Per-example gradients of a whole batch come from one backward pass (the loss is a sum over
    examples and the layer's output gradient at a token only involves that token's loss).
    Deterministic given ``seed``.
    """
    import torch

    module = _gradient_module(model)
    device = module.weight.device  # the batches go where the model is (a CUDA-placed model too)
    generator = torch.Generator().manual_seed(seed)
    lora_a = torch.randn(rank, module.in_features, generator=generator) / math.sqrt(module.in_features)
    projection = torch.from_numpy(
        np.random.default_rng(seed).choice([-1.0, 1.0], size=(module.out_features * rank, dim))
        / math.sqrt(dim)
    ).float()
    lora_a, projection = lora_a.to(device), projection.to(device)  # drawn on the CPU: the same on any device
    captured: dict[str, torch.Tensor] = {}

    def hook(_module: Any, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
        captured["x"] = inputs[0].detach().float()
        captured["y"] = output.detach().requires_grad_()  # a leaf: backward stops here
        return captured["y"]

    sequences = _sequences(rows, indices, tokenizer, max_length)
    features = torch.zeros(len(indices), dim)
    was_training = model.training
    model.eval()
    flags = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    handle = module.register_forward_hook(hook)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    try:
        batches = list(_chunks(len(sequences), batch_size))
        for part in _progress(batches, progress, desc="gradients", unit="batch"):
            batch = sequences[part]
            width = max(len(ids) for _, ids, _, _ in batch)
            input_ids = torch.tensor(
                [ids + [pad] * (width - len(ids)) for _, ids, _, _ in batch], device=device
            )
            attention = torch.tensor(
                [[1] * len(ids) + [0] * (width - len(ids)) for _, ids, _, _ in batch], device=device
            )
            mask = torch.tensor(
                [m + [0] * (width - len(m)) for _, _, m, _ in batch], dtype=torch.bool, device=device
            )
            coefficient = torch.tensor([c for _, _, _, c in batch], device=device)
            logits = model(input_ids=input_ids, attention_mask=attention).logits.float()
            logps = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, input_ids[:, 1:, None])[..., 0]
            nll = -torch.where(mask[:, 1:], logps, 0.0).sum(dim=-1)
            (coefficient * nll).sum().backward()
            grad_b = torch.einsum("bto,btr->bor", captured["y"].grad.float(), captured["x"] @ lora_a.T)
            projected = (grad_b.reshape(len(batch), -1) @ projection).cpu()
            features.index_add_(0, torch.tensor([row for row, _, _, _ in batch]), projected)
    finally:
        handle.remove()
        for parameter, flag in zip(model.parameters(), flags, strict=True):
            parameter.requires_grad_(flag)
        model.train(was_training)
    array = features.double().numpy()
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.where(norms > 0, norms, 1.0)
