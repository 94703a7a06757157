"""Scoring the sequences of a batch in chunks: full sequences, continuations on a shared prompt
cache, GEM rows; the chunk runner with two-pass checkpointing and the empty chunks that keep every
rank's model calls equal (see :mod:`.chunks`)."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.checkpoint import checkpoint

from .chunks import chunk_count
from .gem import chunked_gem_loss, gem_token_loss
from .losses import sequence_logps
from .prefix import continuation_inputs, layer_checkpointing_paused, next_token_logps, notice_once

__all__ = [
    "check_plain_lm_head",
    "gem_chunk",
    "gem_chunk_full_logits",
    "partitioned_by_zero3",
    "paused",
    "run_chunks",
    "score_after_prompts",
    "score_chunk",
    "score_continuations",
    "score_full_sequences",
    "select_groups",
]


def score_chunk(model: torch.nn.Module, **model_inputs: Any) -> tuple[torch.Tensor, ...]:
    """Sequence log-probs of one chunk, plus its summed token entropy and top-1 hits."""
    outputs = model(**model_inputs, fused_lm_head=True)
    logps = sequence_logps(outputs.log_probs, outputs.label_mask)
    entropy = outputs.entropy.detach().float().sum() if outputs.entropy is not None else logps.new_zeros(())
    top1 = outputs.is_top1.detach().float().sum() if outputs.is_top1 is not None else logps.new_zeros(())
    return logps, entropy, top1


def score_full_sequences(model, input_ids, attention_mask, labels) -> tuple[torch.Tensor, ...]:
    width = int(attention_mask.sum(dim=-1).max())
    return score_chunk(
        model,
        input_ids=input_ids[:, :width],
        attention_mask=attention_mask[:, :width],
        labels=labels[:, :width],
        use_cache=False,
    )


def score_continuations(model, layers, prefix_mask, group_index, ids, mask, labels, min_width=1) -> tuple:
    # Builds the expanded cache inside, so a two-pass recompute starts from the prompt's tensors.
    inputs = continuation_inputs(layers, prefix_mask, group_index, ids, mask, labels, min_width)
    config = getattr(getattr(model, "module", model), "config", None)
    if getattr(config, "output_router_logits", False):
        # MoE: TRL's fused head would weigh the continuation's router logits with the full
        # (prompt + continuation) attention mask and fail; the spectrum loss does not use that
        # auxiliary loss on either path
        inputs["output_router_logits"] = False
    return score_chunk(model, **inputs)


def score_after_prompts(model, layers, prompt_mask, next_logps, group_index, ids, mask, labels) -> tuple:
    """:func:`score_continuations` after whole prompts (:func:`.prefix.encode_whole_prompts`).

    Takes the collated continuation columns (the last prompt token first); the model runs from the
    first completion token on, whose own log-prob is read off the prompt's last position.
    """
    first = next_token_logps(next_logps, group_index, labels[:, 1])
    rest = score_continuations(
        model, layers, prompt_mask, group_index, ids[:, 1:], mask[:, 1:], labels[:, 1:], min_width=2
    )  # >= 2: the head scores positions 1..
    return tuple(a + b for a, b in zip(rest, first, strict=True))


def paused(score: Any) -> Any:
    """``score`` with the model's per-layer checkpointing paused, so its layers read the prompt
    cache; for a call that is checkpointed as a whole (see :mod:`.prefix`)."""

    def run(model, *args):
        with layer_checkpointing_paused(model):
            return score(model, *args)

    return run


def select_groups(inputs: dict[str, Any], keep: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model inputs of the groups in ``keep`` ``[G]`` only (group indices renumbered)."""
    rows = keep[inputs["group_index"]]
    renumber = keep.long().cumsum(0) - 1
    out = {
        key: inputs[key][rows]
        for key in ("input_ids", "attention_mask", "labels", "cont_ids", "cont_mask", "cont_labels")
        if key in inputs
    }
    out["group_index"] = renumber[inputs["group_index"][rows]]
    if "prefix_ids" in inputs:
        # Drop the left-padding columns that only the removed groups' longer prompts needed.
        mask = inputs["prefix_mask"][keep]
        first = int(mask.any(0).long().argmax())
        out["prefix_ids"], out["prefix_mask"] = inputs["prefix_ids"][keep][:, first:], mask[:, first:]
    return out


def check_plain_lm_head(config: Any) -> None:
    # TRL's fused head rescales/softcaps logits for these models; the GEM head does not (yet).
    for name in (
        "final_logit_softcapping",
        "logit_scale",
        "output_multiplier",
        "lm_head_multiplier",
        "logits_scaling",
    ):
        if getattr(config, name, None) not in (None, 1, 1.0):
            raise NotImplementedError(f"spectrum_loss_type='gem' does not support models with {name}")


def gem_chunk(model, backbone, head, beta, h, input_ids, attention_mask, labels) -> tuple[torch.Tensor, ...]:
    """Per-row summed GEM loss of full sequences, plus summed entropy, top-1 hits and log-probs.

    The model runs its ordinary forward with ``logits_to_keep=1`` (so through DDP/PEFT wrappers,
    and only a ``[n, 1, V]`` logits tensor), a hook keeps the backbone's last hidden state, and
    :func:`chunked_gem_loss` applies the LM head in chunks of positions.
    """
    width = int(attention_mask.sum(dim=-1).max())
    captured = []
    handle = backbone.register_forward_hook(lambda _module, _args, output: captured.append(output[0]))
    try:
        model(
            input_ids=input_ids[:, :width],
            attention_mask=attention_mask[:, :width],
            use_cache=False,
            logits_to_keep=1,
        )
    finally:
        handle.remove()
    labels = labels[:, 1:width]
    mask = labels != -100
    hidden = captured[-1][:, :-1][mask].to(head.weight.device)
    out = chunked_gem_loss(
        hidden, head.weight, labels[mask].to(head.weight.device), head.bias, beta, h, with_stats=True
    )
    rows = mask.nonzero()[:, 0].to(out.loss.device)
    per_row = out.loss.new_zeros(len(labels)).index_add(0, rows, out.loss)
    return per_row, out.entropy.sum(), out.is_top1.float().sum(), out.log_prob.sum()


NO_RECOMPUTE = (
    "DeepSpeed ZeRO-3 cannot recompute a whole chunk call in backward (its partitioned weights, TRL's fused "
    "head among them, are released before the recompute), so the chunks of spectrum_chunk_size run without "
    "the two-pass recompute: same numbers, activations of every chunk kept until backward (the model's own "
    "layer checkpointing, gradient_checkpointing, still bounds them)"
)


def partitioned_by_zero3(model: torch.nn.Module) -> bool:
    """Whether ``model``'s parameters are DeepSpeed ZeRO-3 partitions (each gathered only inside its
    module's forward and backward hooks), which a whole-call ``checkpoint`` cannot recompute."""
    first = next(iter(model.parameters()), None)
    return first is not None and hasattr(first, "ds_status")


GEM_FULL_LOGITS = (
    "DeepSpeed ZeRO-3: the GEM rows are scored on the model's full logits (the chunked GEM head reads "
    "the LM head's weight directly, which ZeRO-3 keeps partitioned outside the head's own forward): "
    "same numbers, a [rows, length, vocab] logits tensor per chunk"
)


def gem_chunk_full_logits(model, backbone, head, beta, h, input_ids, attention_mask, labels) -> tuple:
    """:func:`gem_chunk` on the model's own logits (its LM head called as a module, so an engine that
    gathers weights in module hooks, DeepSpeed ZeRO-3, sees it); ``backbone`` and ``head`` unused."""
    width = int(attention_mask.sum(dim=-1).max())
    logits = model(
        input_ids=input_ids[:, :width], attention_mask=attention_mask[:, :width], use_cache=False
    ).logits[:, :-1]
    labels = labels[:, 1:width]
    mask = labels != -100
    scored, targets = logits[mask], labels[mask]
    loss = gem_token_loss(scored, targets, beta, h)
    with torch.no_grad():
        logps = scored.float().log_softmax(-1)
        entropy = -(logps.exp() * logps).sum(-1)
        top1 = scored.argmax(-1) == targets
        log_prob = logps.gather(-1, targets[:, None]).squeeze(-1)
    rows = mask.nonzero()[:, 0]
    per_row = loss.new_zeros(len(labels)).index_add(0, rows, loss)
    return per_row, entropy.sum(), top1.float().sum(), log_prob.sum()


def run_chunks(
    score: Any,
    shared: tuple,
    tensors: list[torch.Tensor],
    size: int,
    calls: int | None = None,
    empty: list[torch.Tensor] | None = None,
    checkpoint_all: bool = False,
    recompute: bool = True,
    pad_with_score: bool = False,
) -> tuple[list[tuple], torch.Tensor]:
    """``score(*shared, *chunk)`` on consecutive chunks of ``size`` rows of ``tensors``.

    ``calls`` (the count every rank agreed on, :func:`.chunks.agree_counts`) pads the real chunks
    with empty ones (``empty``, see :func:`.chunks.empty_chunk`) scored as full sequences on the
    model ``shared[0]``; returns the real chunks' results and an exactly-zero scalar attached to the
    empty chunks' graphs (add it to the loss, so their backward runs too). With more than one call
    and grad enabled, every chunk runs under non-reentrant activation checkpointing: the forward
    keeps no activations and backward recomputes one chunk at a time with its exact upstream
    gradient (the two-pass algorithm), so memory does not grow with rows. ``checkpoint_all``
    checkpoints a single chunk too (it stands in for the model's own activation checkpointing).
    ``recompute=False`` (the engine cannot recompute a whole call: :func:`partitioned_by_zero3`)
    runs every call plainly, once, with a one-time notice; the caller must then not need
    ``checkpoint_all`` (the trainer turns prefix sharing off where layers are checkpointed).
    ``pad_with_score``: the empty chunks run ``score(*shared, *empty)`` itself, for a ``score`` that
    calls the model's modules differently from its fused forward (GEM: the LM head as a module, or
    its weight directly); ZeRO-3 requires the same module order on every rank.
    """
    total = tensors[0].size(0)
    real = chunk_count(total, size)
    calls = real if calls is None else calls
    two_pass = (calls > 1 or checkpoint_all) and torch.is_grad_enabled()
    if two_pass and not recompute:
        if checkpoint_all:
            raise ValueError("checkpoint_all needs an engine that can recompute a whole call")
        notice_once(NO_RECOMPUTE)
        two_pass = False

    def run(function: Any, *args: Any) -> tuple:
        if not two_pass:
            return function(*args)
        # standing in for the model's layer checkpointing: its layers run once forward and once
        # recomputed on every rank, whatever each rank scores
        return checkpoint(paused(function) if checkpoint_all else function, *args, use_reentrant=False)

    parts = [
        run(score, *shared, *[tensor[start : start + size] for tensor in tensors])
        for start in range(0, total, size)
    ]
    anchor = torch.zeros((), device=tensors[0].device)
    for _ in range(calls - real):
        args = (score, *shared) if pad_with_score else (score_full_sequences, shared[0])
        padded = run(*args, *empty)
        anchor = anchor + 0.0 * padded[0].sum()
    return parts, anchor
