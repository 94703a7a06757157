"""In-context steerability: NLL of held-out outputs after k in-context examples.

Each held-out output ``y`` is appended as the last ``output`` turn of an in-context sequence
(:func:`spectrum_tune.training.data.incontext_messages`: optional description, then the first ``k``
examples), rendered with the model's chat template; only ``y``'s content and its end-of-turn
token are scored. ``incontext_nll@k`` is the mean sequence NLL (nats) over held-out outputs: it
should fall as k grows for a model that reads the distribution off its context.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..training.chat import render_with_spans, span_mask
from ..training.data import incontext_messages
from .backends import Backend
from .published import CALIBRATION_MIN_PROB, incontext_metrics
from .score import group_logprobs
from .tasks import Item, Task

__all__ = ["heldout_group", "published_positions", "steer_item_groups", "steer_task"]


def heldout_group(messages: list[dict[str, str]], tokenizer: Any) -> dict[str, Any]:
    """Tokenise an in-context sequence as a K = 1 group scoring only its last output turn.

    :func:`spectrum_tune.training.tokenize.render_incontext` scores every output (and never an undescribed
    first one), so it cannot give the k = 0 case; the token layout here is the same (same
    template, same ``add_special_tokens=False`` tokenisation).
    """
    # The last output is located by construction (rendered as a marker), the same helper the
    # training side uses: searching for the content could hit the role header or an earlier turn.
    text, spans = render_with_spans(tokenizer, messages, [len(messages) - 1])
    ids, mask = span_mask(tokenizer, text, spans)
    scored = [index for index, hit in enumerate(mask) if hit]
    first, last = scored[0], scored[-1] + 1
    return {
        "prompt_ids": ids[:first],
        "completion_ids": [ids[first:last]],
        "completion_mask": [[1] * (last - first)],
        "weights": [1.0],
    }


def steer_item_groups(item: Item, tokenizer: Any) -> list[tuple[int, dict[str, Any]]]:
    """``(k, group)`` for every k of the item and every held-out output."""
    return [
        (k, heldout_group(incontext_messages([*item.examples[:k], output], item.description), tokenizer))
        for k in item.k
        for output in item.heldout
    ]


def steer_task(
    model: Any, tokenizer: Any, task: Task, *, batch_size: int = 64, published: bool = False
) -> list[dict[str, Any]]:
    """Per-item records with ``incontext_nll@k`` (mean over held-out outputs) for each k.

    ``published`` (or the task's ``published: true``) adds the reference's in-context metrics
    (``loss``, ``loss_geq_1``, ``loss_k``, ``first_acc``, ``acc``, ``all_acc``, ``ece`` and their
    variants, :func:`published_positions`), with the per-position records under ``positions``.
    """
    if isinstance(model, Backend):
        tokenizer = model.tokenizer
    records = []
    for item in task.items:
        pairs = steer_item_groups(item, tokenizer)
        groups = [group for _, group in pairs]
        if isinstance(model, Backend):
            logps = model.group_logprobs(groups)
        else:
            logps = group_logprobs(model, groups, tokenizer.pad_token_id, batch_size)
        nll: dict[int, list[float]] = {k: [] for k in item.k}
        for (k, _), s in zip(pairs, logps, strict=True):
            nll[k].append(-float(s[0]))
        records.append(
            {
                "description": item.description,
                "n_examples": len(item.examples),
                "n_heldout": len(item.heldout),
                "metrics": {f"incontext_nll@{k}": float(np.mean(values)) for k, values in nll.items()},
                "nll": {str(k): values for k, values in nll.items()},
            }
        )
        if published or task.published:
            positions = published_positions(model, tokenizer, item, batch_size=min(batch_size, 16))
            records[-1]["metrics"].update(incontext_metrics(positions))
            records[-1]["positions"] = positions
    return records


# --------------------------------------------------------------------------------------------
# Published in-context metrics (tsor13/spectrum's ICL eval): every example at its own position
# --------------------------------------------------------------------------------------------


def _token_logprobs(model: Any, sequences: list[list[int]], pad_token_id: int) -> list[torch.Tensor]:
    """Full-vocabulary next-token log-probs (float32, [len - 1, V]) of each right-padded sequence."""
    device = next(model.parameters()).device
    width = max(len(ids) for ids in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
    with torch.no_grad():
        logits = model(
            input_ids=input_ids.to(device), attention_mask=attention.to(device), use_cache=False
        ).logits
    return [logits[row, : len(ids) - 1].float().log_softmax(-1).cpu() for row, ids in enumerate(sequences)]


def published_positions(model: Any, tokenizer: Any, item: Item, batch_size: int = 16) -> list[dict[str, Any]]:
    """Per-position records of the reference's ICL eval for one steer item.

    The sequence is the item's description (if any) and its ``examples``; example ``j``'s output
    (content and end-of-turn token) is scored given everything before it, the first one too (the
    reference scores the prior). A causal model's logits at those positions are the same whether
    the sequence continues or not, so each position is scored on its own prefix
    (:func:`heldout_group` of the first ``j + 1`` outputs), in batches.
    """
    groups = [
        heldout_group(incontext_messages(item.examples[: j + 1], item.description), tokenizer)
        for j in range(len(item.examples))
    ]
    min_logp = math.log(CALIBRATION_MIN_PROB)
    rows = []
    for start in range(0, len(groups), batch_size):
        chunk = groups[start : start + batch_size]
        sequences = [g["prompt_ids"] + g["completion_ids"][0] for g in chunk]
        if isinstance(model, Backend):
            token_logps = model.token_logprobs(sequences)
        else:
            token_logps = _token_logprobs(model, sequences, tokenizer.pad_token_id)
        for offset, (group, logps) in enumerate(zip(chunk, token_logps, strict=True)):
            first = len(group["prompt_ids"])
            labels = torch.tensor(group["completion_ids"][0])
            scored = logps[first - 1 : first - 1 + len(labels)]  # row t predicts token t + 1
            correct = scored.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
            hits = (scored.argmax(-1) == labels).float()
            others = scored.clone()
            others[torch.arange(len(labels)), labels] = -math.inf
            rows.append(
                {
                    "example_ind": start + offset,
                    "loss": float(-correct.sum()),
                    "first_acc": float(hits[0]),
                    "acc": float(hits.mean()),
                    "all_acc": float(hits.min()),
                    "n_tokens": len(labels),
                    "correct_logprobs": correct.tolist(),
                    "incorrect_logprobs": others[others > min_logp].tolist(),
                }
            )
    return rows
