"""Prefix sharing: encode a group's prompt once and reuse its key/value cache for all K references.

The prompt minus its last token is forwarded once per group (``use_cache=True``); each reference
then runs as ``[last prompt token] + completion`` on top of that group's cache, selected per
sequence with ``index_select`` (so groups of different K share one batch). Gradients flow into
the prompt through the cache, so values and gradients equal the naive path (K full sequences),
while the prompt's cost is paid once instead of K times: the ideal speed-up is
``(P + R)·K / (P + R·K)`` for prompt length P and completion length R.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

__all__ = ["collate_prefix", "continuation_inputs", "encode_prompts", "expand_cache"]


def collate_prefix(
    prompts: list[list[int]], completions: list[list[int]], masks: list[list[int]],
    group_index: list[int], pad_token_id: int,
) -> dict[str, torch.Tensor] | None:
    """Tensors for the shared-prefix path, or None when a prompt is too short to share.

    ``prefix_ids``/``prefix_mask`` ``[G, P-1]`` hold each prompt but its last token, left-padded
    (so every prompt ends at the same column and its continuation starts right after);
    ``cont_ids``/``cont_mask``/``cont_labels`` ``[N, 1 + R]`` hold the last prompt token then
    the completion, right-padded, with labels only on loss tokens.
    """
    if any(len(prompt) < 2 for prompt in prompts):
        return None
    width = max(len(prompt) for prompt in prompts) - 1
    prefix_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    prefix_mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for g, prompt in enumerate(prompts):
        body = prompt[:-1]
        prefix_ids[g, width - len(body) :] = torch.tensor(body, dtype=torch.long)
        prefix_mask[g, width - len(body) :] = 1
    cont_width = 1 + max(len(completion) for completion in completions)
    cont_ids = torch.full((len(completions), cont_width), pad_token_id, dtype=torch.long)
    cont_mask = torch.zeros((len(completions), cont_width), dtype=torch.long)
    cont_labels = torch.full((len(completions), cont_width), -100, dtype=torch.long)
    for row, (completion, mask, g) in enumerate(zip(completions, masks, group_index, strict=True)):
        ids = torch.tensor([prompts[g][-1], *completion], dtype=torch.long)
        cont_ids[row, : len(ids)] = ids
        cont_mask[row, : len(ids)] = 1
        keep = torch.tensor([False, *map(bool, mask)])
        cont_labels[row, : len(ids)] = torch.where(keep, ids, -100)
    return {
        "prefix_ids": prefix_ids,
        "prefix_mask": prefix_mask,
        "cont_ids": cont_ids,
        "cont_mask": cont_mask,
        "cont_labels": cont_labels,
    }


def encode_prompts(model: Any, prefix_ids: torch.Tensor, prefix_mask: torch.Tensor) -> list[tuple]:
    """Forward the prompts once; return each layer's (keys, values), still attached to the graph."""
    cache = DynamicCache()
    positions = (prefix_mask.cumsum(-1) - 1).clamp(min=0)
    # logits_to_keep=1: only the cache is wanted, not a [G, P, V] logits tensor.
    model(
        input_ids=prefix_ids, attention_mask=prefix_mask, position_ids=positions,
        cache=cache, use_cache=True, logits_to_keep=1,
    )
    return [(layer.keys, layer.values) for layer in cache.layers]


def expand_cache(layers: list[tuple], group_index: torch.Tensor) -> DynamicCache:
    """A fresh cache holding, for each sequence, its group's prompt keys and values."""
    cache = DynamicCache()
    for layer, (keys, values) in enumerate(layers):
        cache.update(keys.index_select(0, group_index), values.index_select(0, group_index), layer)
    return cache


def continuation_inputs(
    layers: list[tuple], prefix_mask: torch.Tensor, group_index: torch.Tensor,
    cont_ids: torch.Tensor, cont_mask: torch.Tensor, cont_labels: torch.Tensor,
) -> dict[str, Any]:
    """Model inputs for a chunk of continuations on top of their groups' prompt caches."""
    width = int(cont_mask.sum(-1).max())
    cont_ids, cont_mask, cont_labels = cont_ids[:, :width], cont_mask[:, :width], cont_labels[:, :width]
    prompt_mask = prefix_mask.index_select(0, group_index)
    start = prompt_mask.sum(-1, keepdim=True)
    return {
        "input_ids": cont_ids,
        "attention_mask": torch.cat([prompt_mask, cont_mask], dim=-1),
        "position_ids": start + torch.arange(width, device=cont_ids.device),
        "cache": expand_cache(layers, group_index),
        "labels": cont_labels,
    }
