"""In-context steerability: NLL of held-out outputs after k in-context examples.

Each held-out output ``y`` is appended as the last ``output`` turn of an in-context sequence
(:func:`spectrum_tune.training.data.incontext_messages`: optional description, then the first ``k``
examples), rendered with the model's chat template; only ``y``'s content and its end-of-turn
token are scored. ``incontext_nll@k`` is the mean sequence NLL (nats) over held-out outputs: it
should fall as k grows for a model that reads the distribution off its context.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..training.chat import render_with_spans, span_mask
from ..training.data import incontext_messages
from .score import group_logprobs
from .tasks import Item, Task

__all__ = ["heldout_group", "steer_item_groups", "steer_task"]


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


def steer_task(model: Any, tokenizer: Any, task: Task, *, batch_size: int = 64) -> list[dict[str, Any]]:
    """Per-item records with ``incontext_nll@k`` (mean over held-out outputs) for each k."""
    records = []
    for item in task.items:
        pairs = steer_item_groups(item, tokenizer)
        logps = group_logprobs(model, [group for _, group in pairs], tokenizer.pad_token_id, batch_size)
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
    return records
