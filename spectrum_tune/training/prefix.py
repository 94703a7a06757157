"""Prefix sharing: encode a group's prompt once and reuse its key/value cache for all K references.

The collator lays a batch out as each prompt minus its last token (``prefix_ids``) and, per
reference, ``[last prompt token] + completion`` (``cont_*``). The trainer forwards the whole prompt
once per group (:func:`encode_whole_prompts`, ``use_cache=True``): its last position gives the first
completion token's log-prob, and each reference runs from its first completion token on top of
its group's cache (:class:`SharedPromptLayer` joins the prompt's keys/values to the sequence's own
in one copy, so groups of different K share one batch), P + R·K positions a group. Score mode
(:func:`encode_prompts` + :func:`continuation_inputs`) still runs ``[last prompt token] +
completion``. Gradients flow into the prompt through the cache, so values and gradients equal the
naive path (K full sequences), while the prompt's cost is paid once instead of K times: the ideal
speed-up is ``(P + R)·K / (P + R·K)`` for prompt length P and completion length R.

It is exact only where a prompt's cache is a plain key/value tensor per layer that the
continuation reads unchanged. :func:`prefix_sharing_blocker` says, before any model call, why it
cannot hold for a model and batch (recurrent/hybrid layers, PEFT prompt learning, a sliding window
shorter than the prompt, longrope scaling that would differ between prompt and continuation);
:func:`encode_prompts` then checks the cache it got (one entry per layer, the prompt's width).
Either way the caller falls back to full sequences with a one-line notice
(:func:`notice_fallback`), never a silent difference.

Activation checkpointing (TRL's default ``gradient_checkpointing=True``) works per layer and
drops the cache inside a checkpointed layer, so it cannot be combined with a cache as it is.
Where a model checkpoints its layers (:func:`layer_checkpointing`), the checkpoint moves up one
level instead: the prompt encode and every continuation chunk each run as one non-reentrant
checkpoint with the layers' own checkpointing paused inside (:func:`layer_checkpointing_paused`).
A step then keeps only the prompts' keys/values and each call's inputs, recomputes one call at a
time in backward, and the gradients are the same as without checkpointing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils.checkpoint import checkpoint
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

__all__ = [
    "PrefixCacheError",
    "SharedPromptLayer",
    "collate_prefix",
    "continuation_inputs",
    "encode_prompt_stand_in",
    "encode_prompts",
    "encode_whole_prompts",
    "expand_cache",
    "layer_checkpointing",
    "layer_checkpointing_paused",
    "next_token_logps",
    "notice_fallback",
    "notice_once",
    "prefix_sharing_blocker",
]

logger = logging.getLogger(__name__)
_NOTICED: set[str] = set()


class PrefixCacheError(RuntimeError):
    """The prompt cache a model returned is not one plain key/value entry per layer of the prompt's width."""


def notice_once(message: str) -> None:
    """Log ``message`` once per process: a path the trainer chose instead of the configured one."""
    if message not in _NOTICED:
        _NOTICED.add(message)
        logger.warning("spectrum-tune: %s", message)


def notice_fallback(reason: str) -> None:
    """Say once per reason that prefix sharing fell back to full sequences (same numbers, slower)."""
    notice_once(f"prefix sharing off ({reason}); scoring full sequences instead")


def layer_checkpointing(model: torch.nn.Module) -> bool:
    """Whether a forward of ``model`` now would checkpoint its layers (and so drop a cache).

    transformers checkpoints a layer in training mode with grad on, whether checkpointing came
    from the config, ``model.gradient_checkpointing_enable()`` or k-bit preparation.
    """
    if not (model.training and torch.is_grad_enabled()):
        return False
    return any(getattr(module, "gradient_checkpointing", False) is True for module in model.modules())


@contextmanager
def layer_checkpointing_paused(model: torch.nn.Module) -> Iterator[None]:
    """The model's per-layer checkpointing off inside, restored on exit (whatever set it).

    Used inside a call that is checkpointed as a whole, so that its layers keep the cache; the
    recompute in backward runs the same function and so pauses it again.
    """
    switched = [
        module for module in model.modules() if getattr(module, "gradient_checkpointing", False) is True
    ]
    for module in switched:
        module.gradient_checkpointing = False
    try:
        yield
    finally:
        for module in switched:
            module.gradient_checkpointing = True


def _rope_parameters(config: Any) -> dict[str, Any]:
    parameters = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    return parameters if isinstance(parameters, dict) else {}


def prefix_sharing_blocker(
    model: torch.nn.Module, sequence_width: int, *, router_aux_loss: bool = False
) -> str | None:
    """Why prefix sharing would not be exact for ``model`` (unwrapped from DDP/FSDP), or None.

    ``sequence_width`` is the longest full sequence (prompt + completion) of the batch;
    ``router_aux_loss``: the trainer adds an MoE model's router load-balancing loss.
    """
    if router_aux_loss:
        return "the MoE router loss weighs router logits by the full sequence's attention mask"
    peft_config = getattr(model, "active_peft_config", None)
    if peft_config is not None and getattr(peft_config, "is_prompt_learning", False):
        return "PEFT prompt learning adds virtual tokens to every forward"
    config = model.config.get_text_config()
    layers = DynamicCache(config=config).layers
    if any(type(layer) not in (DynamicLayer, DynamicSlidingWindowLayer) for layer in layers):
        return f"{config.model_type} has recurrent/hybrid layers whose state is not a key/value cache"
    window = getattr(config, "sliding_window", None)
    # a sliding layer's cache keeps only the window, and the expanded cache is a plain one: share
    # only where nothing slides (real windows, 512-4096, are far longer than most groups)
    sliding = any(isinstance(layer, DynamicSlidingWindowLayer) for layer in layers)
    if sliding and window and sequence_width > window:
        return f"a sequence ({sequence_width} tokens) is longer than the sliding window ({window})"
    rope = _rope_parameters(config)
    if rope.get("rope_type", rope.get("type")) == "longrope":
        threshold = rope.get("original_max_position_embeddings") or getattr(
            config, "original_max_position_embeddings", None
        )
        # longrope picks its scaling from the longest position of each forward: the prompt alone
        # would get the short factors while the full sequence crosses into the long ones
        if threshold is not None and sequence_width > threshold:
            return f"longrope switches scaling past {threshold} positions and a sequence has {sequence_width}"
    return None


def collate_prefix(
    prompts: list[list[int]],
    completions: list[list[int]],
    masks: list[list[int]],
    group_index: list[int],
    pad_token_id: int,
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


def _prompt_cache(model: Any, ids: torch.Tensor, mask: torch.Tensor, next_logps: bool = False):
    cache = DynamicCache()
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    # logits_to_keep=1: only the cache (and the last position's logits) is wanted, not [G, P, V].
    outputs = model(
        input_ids=ids,
        attention_mask=mask,
        position_ids=positions,
        cache=cache,
        use_cache=True,
        logits_to_keep=1,
    )
    layers = [(getattr(layer, "keys", None), getattr(layer, "values", None)) for layer in cache.layers]
    if not next_logps:
        return layers
    return layers, outputs.logits[:, -1].float().log_softmax(dim=-1)


def _paused_prompt_cache(model: Any, ids: torch.Tensor, mask: torch.Tensor, next_logps: bool = False):
    with layer_checkpointing_paused(model):
        return _prompt_cache(model, ids, mask, next_logps)


def _encode(model: Any, ids: torch.Tensor, mask: torch.Tensor, checkpointed: bool, next_logps: bool):
    if checkpointed:
        return checkpoint(_paused_prompt_cache, model, ids, mask, next_logps, use_reentrant=False)
    return _prompt_cache(model, ids, mask, next_logps)


def _check_cache(model: Any, layers: list[tuple], width: int) -> None:
    base = getattr(model, "module", model)  # DDP wraps the model; PEFT models keep the config
    expected = base.config.get_text_config().num_hidden_layers
    if len(layers) != expected or any(
        keys is None or values is None or keys.size(-2) != width or values.size(-2) != width
        for keys, values in layers
    ):
        raise PrefixCacheError(f"the prompt cache is not {expected} key/value entries of width {width}")


def encode_prompts(
    model: Any, prefix_ids: torch.Tensor, prefix_mask: torch.Tensor, *, checkpointed: bool = False
) -> list[tuple]:
    """Forward the prompts once; return each layer's (keys, values), still attached to the graph.

    ``checkpointed``: the model checkpoints its layers (:func:`layer_checkpointing`), so the
    encode runs as one non-reentrant checkpoint with that paused inside: only the keys/values
    are kept, the prompt's activations are recomputed in backward.

    Raises :class:`PrefixCacheError` unless the cache holds one key/value entry of the prompts'
    width per layer (anything else would make the continuations read a different prompt).
    """
    layers = _encode(model, prefix_ids, prefix_mask, checkpointed, next_logps=False)
    _check_cache(model, layers, prefix_ids.size(1))
    return layers


def encode_whole_prompts(
    model: Any,
    prefix_ids: torch.Tensor,
    prefix_mask: torch.Tensor,
    cont_ids: torch.Tensor,
    group_index: torch.Tensor,
    *,
    checkpointed: bool = False,
) -> tuple[list[tuple], torch.Tensor, torch.Tensor]:
    """:func:`encode_prompts` on the whole prompts (the collated prefix plus each group's last
    prompt token, column 0 of its continuations): ``(layers, prompt_mask [G, P], next_logps [G, V])``.

    ``next_logps`` is the log-softmax of the prompt's last position, i.e. the distribution of the
    first completion token, so the continuations need not run the last prompt token once per
    reference (see :func:`next_token_logps`): K fewer positions per group.
    """
    last = cont_ids.new_zeros(prefix_ids.size(0)).scatter(0, group_index, cont_ids[:, 0])
    ids = torch.cat([prefix_ids, last[:, None]], dim=-1)
    mask = torch.cat([prefix_mask, prefix_mask.new_ones(prefix_mask.size(0), 1)], dim=-1)
    layers, next_logps = _encode(model, ids, mask, checkpointed, next_logps=True)
    _check_cache(model, layers, ids.size(1))
    return layers, mask, next_logps


def encode_prompt_stand_in(model: Any, ids: torch.Tensor, mask: torch.Tensor, *, checkpointed: bool = False):
    """An exactly-zero scalar attached to the prompt encode of ``ids`` (a one-token stand-in): a rank
    without prompts makes the call the other ranks' :func:`encode_whole_prompts` makes, module for
    module (ZeRO-3 requires the same module order on every rank), and its backward."""
    layers, next_logps = _encode(model, ids, mask, checkpointed, next_logps=True)
    total = next_logps.sum() + sum(keys.sum() + values.sum() for keys, values in layers)
    return 0.0 * total


def next_token_logps(next_logps: torch.Tensor, group_index: torch.Tensor, labels: torch.Tensor):
    """``(log-probs [N], entropy sum, top-1 hits)`` of each sequence's first completion token
    ``labels`` ``[N]`` (-100: not scored) under its group's prompt distribution ``next_logps``."""
    scored = labels != -100
    targets = labels.clamp(min=0)
    logps = torch.where(scored, next_logps[group_index, targets], 0.0)
    with torch.no_grad():
        entropy = -(next_logps.exp() * next_logps).sum(-1)[group_index]
        top1 = next_logps.argmax(-1)[group_index] == targets
        stats = (torch.where(scored, entropy, 0.0).sum(), (top1 & scored).float().sum())
    return logps, *stats


def _broadcast_plan(group_index: torch.Tensor) -> tuple[int, int, int] | None:
    """``(first group, groups, rows per group)`` where the rows are consecutive groups with equal
    row counts (the usual batch), else None."""
    groups, counts = torch.unique_consecutive(group_index, return_counts=True)
    k = int(counts[0])
    if bool((groups[1:] - groups[:-1] == 1).all()) and bool((counts == k).all()):
        return int(groups[0]), len(groups), k
    return None


def _per_sequence(prompt: torch.Tensor, new: torch.Tensor, group_index: torch.Tensor, plan) -> torch.Tensor:
    """``[N, h, P + R, d]``: each sequence's group prompt states ``prompt[group_index]`` then its own.

    One copy. With a :func:`_broadcast_plan` the prompt is broadcast over each group's rows, whose
    backward is a sum; otherwise it is gathered per row (``index_select``, whose backward scatters).
    """
    if plan is None:
        return torch.cat([prompt.index_select(0, group_index), new], dim=-2)
    first, groups, k = plan
    block = prompt[first : first + groups].unsqueeze(1).expand(-1, k, -1, -1, -1)
    joined = torch.cat([block, new.view(groups, k, *new.shape[1:])], dim=-2)
    return joined.view(len(group_index), *joined.shape[2:])


class SharedPromptLayer(DynamicLayer):
    """A layer's cache for continuations of shared prompts: each group's prompt keys/values once.

    The length seen before the update (for masks and positions) is the prompt's; the continuation's
    update returns every sequence's prompt states followed by its own, built in one copy
    (:func:`_per_sequence`) instead of expanding the cache first and concatenating after.
    """

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, group_index: torch.Tensor, plan=None):
        super().__init__()
        self.keys, self.values, self.device, self.is_initialized = keys, values, keys.device, True
        self.group_index, self.plan = group_index, plan

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any):
        self.keys = _per_sequence(self.keys, key_states, self.group_index, self.plan)
        self.values = _per_sequence(self.values, value_states, self.group_index, self.plan)
        return self.keys, self.values


def expand_cache(layers: list[tuple], group_index: torch.Tensor) -> DynamicCache:
    """A fresh cache holding, for each sequence, its group's prompt keys and values."""
    cache, plan = DynamicCache(), _broadcast_plan(group_index)
    cache.layers = [SharedPromptLayer(keys, values, group_index, plan) for keys, values in layers]
    return cache


def continuation_inputs(
    layers: list[tuple],
    prefix_mask: torch.Tensor,
    group_index: torch.Tensor,
    cont_ids: torch.Tensor,
    cont_mask: torch.Tensor,
    cont_labels: torch.Tensor,
    min_width: int = 1,
) -> dict[str, Any]:
    """Model inputs for a chunk of continuations on top of their groups' prompt caches, at least
    ``min_width`` columns wide (padding: mask 0, no label)."""
    if cont_ids.size(1) < min_width:
        pad = min_width - cont_ids.size(1)
        cont_ids = torch.nn.functional.pad(cont_ids, (0, pad))
        cont_mask = torch.nn.functional.pad(cont_mask, (0, pad))
        cont_labels = torch.nn.functional.pad(cont_labels, (0, pad), value=-100)
    width = max(int(cont_mask.sum(-1).max()), min_width)
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
