"""Score mode: exact sequence log-probabilities of every listed reference, no sampling.

Each item is tokenised exactly as training rows are (:func:`spectrum_tune.training.tokenize.tokenize_group`:
shared prompt, each reference followed by its end token: the template's end-of-turn, EOS for plain
text), batched with the trainer's
:class:`~spectrum_tune.training.trainer.SpectrumCollator`, and scored with log-softmax in float32,
the LM head applied in float32 to the model's final hidden states whatever the checkpoint's dtype,
summed with :func:`spectrum_tune.training.losses.sequence_logps`. So the numbers are the ``s_k`` the
spectrum loss trains on.

By default a batch shares each prompt across its references as training does
(:mod:`spectrum_tune.training.prefix`): the prompts are encoded once, their key/value cache is expanded per
reference, and only the continuations run through the model, so a long prompt (chat template,
in-context examples) is paid once per item instead of once per reference. ``prefix_sharing=False``
forwards every reference as a full sequence; both give the same log-probs up to float rounding.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.special import softmax

from ..training.chat import reference_end_id
from ..training.losses import sequence_logps
from ..training.prefix import (
    PrefixCacheError,
    continuation_inputs,
    encode_prompts,
    notice_fallback,
    prefix_sharing_blocker,
)
from ..training.tokenize import tokenize_group
from ..training.trainer import SpectrumCollator
from .backends import Backend
from .metrics import normalized_entropy, score_distribution_match, valid_mass
from .published import distributional_metrics
from .tasks import Item, Task

__all__ = ["group_logprobs", "score_item", "score_task", "tokenize_for_scoring"]


def tokenize_for_scoring(item: Item, tokenizer: Any, published_eot: bool = False) -> dict[str, Any]:
    """Tokenised group of an item's references; ``published_eot`` leaves the end-of-turn unscored.

    The published Spectrum Tuning eval omits the end-of-turn token, so a prefix ("1") also
    collects the mass of its extensions ("10", "15"); the default counts it (complete outputs).
    """
    group = tokenize_group(item.row, tokenizer, max_length=None)
    if published_eot:
        end = reference_end_id(tokenizer, item.row["prompt"])
        group["completion_mask"] = [
            [*mask[:-1], 0] if ids and ids[-1] == end else mask
            for ids, mask in zip(group["completion_ids"], group["completion_mask"], strict=True)
        ]
    return group


def _final_hidden(model: Any, **inputs: Any) -> torch.Tensor:
    """The backbone's last hidden state ``[N, T, H]`` from the model's own forward.

    A hook on the backbone (``base_model``, what the LM head reads) keeps its output, while the
    forward itself projects only the last position (``logits_to_keep=1``): the head is applied
    below in float32 instead of in the checkpoint's dtype.
    """
    unwrapped = model.get_base_model() if hasattr(model, "get_base_model") else model
    captured = []
    handle = unwrapped.base_model.register_forward_hook(lambda _m, _a, output: captured.append(output[0]))
    try:
        model(**inputs, logits_to_keep=1)
    finally:
        handle.remove()
    return captured[-1]


def _head_scaling(config: Any) -> tuple[float, float | None]:
    """(logit multiplier, final softcap) applied after the LM head, read as TRL's fused head reads them."""
    scale = getattr(config, "logit_scale", None)
    if scale is None:
        scale = getattr(config, "output_multiplier", None)
    if scale is None:
        scale = getattr(config, "lm_head_multiplier", None)
    if scale is None and getattr(config, "logits_scaling", None) is not None:
        scale = config.logits_scaling if config.model_type == "hyperclovax" else 1 / config.logits_scaling
    return (1.0 if scale is None else float(scale)), getattr(config, "final_logit_softcapping", None)


def _label_logps(model: Any, hidden: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sequence log-probs from final hidden states: LM head and log-softmax in float32, summed.

    Taking them from the model's logits would inherit the checkpoint's dtype: bf16 logits near 25
    are rounded by ~0.1, and so is every reference's log-prob.
    """
    unwrapped = model.get_base_model() if hasattr(model, "get_base_model") else model
    head = unwrapped.get_output_embeddings()
    targets = labels[:, 1:]
    mask = targets != -100
    # the head only at scored positions: a full [N, T, V] float32 logits tensor is what costs memory
    states = hidden[:, :-1][mask].to(head.weight.device).float()
    bias = None if getattr(head, "bias", None) is None else head.bias.float()
    with torch.autocast(states.device.type, enabled=False):
        logits = torch.nn.functional.linear(states, head.weight.float(), bias)
    scale, softcap = _head_scaling(unwrapped.config.get_text_config())
    logits = logits * scale
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    scored = logits.log_softmax(dim=-1)
    per_token = torch.zeros(mask.shape, dtype=torch.float32, device=scored.device)
    mask, targets = mask.to(scored.device), targets.to(scored.device)
    per_token[mask] = scored.gather(-1, targets[mask].unsqueeze(-1)).squeeze(-1)
    return sequence_logps(per_token, mask).cpu()


def _forward_logps(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sequence log-probs of one collated batch; on the prompts' shared cache when that is exact.

    Where prefix sharing cannot be exact for this model (see
    :func:`~spectrum_tune.training.prefix.prefix_sharing_blocker`) the batch runs as full sequences.
    """
    device = next(model.parameters()).device
    batch = {key: value.to(device) for key, value in batch.items()}
    if "prefix_ids" in batch:
        reason = prefix_sharing_blocker(model, int(batch["attention_mask"].sum(-1).max()))
        if reason is None:
            try:
                layers = encode_prompts(model, batch["prefix_ids"], batch["prefix_mask"])
            except PrefixCacheError as error:
                reason = str(error)
        if reason is None:
            inputs = continuation_inputs(
                layers,
                batch["prefix_mask"],
                batch["group_index"],
                batch["cont_ids"],
                batch["cont_mask"],
                batch["cont_labels"],
            )
            labels = inputs.pop("labels")
            # the continuation's first token is the prompt's last, so position t predicts
            # labels[:, t + 1] exactly as in the full-sequence layout
            return _label_logps(model, _final_hidden(model, **inputs), labels)
        notice_fallback(reason)
    hidden = _final_hidden(
        model, input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    )
    return _label_logps(model, hidden, batch["labels"])


@torch.no_grad()
def group_logprobs(
    model: Any,
    groups: list[dict[str, Any]],
    pad_token_id: int,
    batch_size: int = 64,
    prefix_sharing: bool = True,
) -> list[np.ndarray]:
    """``log p(completion_k | prompt)`` for every completion of every tokenised group.

    Groups larger than ``batch_size`` are split (the prompt is repeated per piece); pieces are
    packed into forwards of at most ``batch_size`` sequences (continuations, with
    ``prefix_sharing``: the batch's prompts are encoded once per batch). Returns one float64
    array per group.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    pieces = []  # (group index, first slot, sub-group)
    for g, group in enumerate(groups):
        for start in range(0, len(group["completion_ids"]), batch_size):
            stop = start + batch_size
            sub = {key: group[key][start:stop] for key in ("completion_ids", "completion_mask", "weights")}
            pieces.append((g, start, {"prompt_ids": group["prompt_ids"], **sub}))
    # The collator leaves the prefix tensors out when a prompt has < 2 tokens; that batch then
    # runs as full sequences.
    collate = SpectrumCollator(pad_token_id, length_normalize=False, prefix_sharing=prefix_sharing)
    results = [np.zeros(len(group["completion_ids"])) for group in groups]
    batch: list[tuple[int, int, dict[str, Any]]] = []

    def flush() -> None:
        collated = collate([piece for _, _, piece in batch])
        logps = _forward_logps(model, collated).double().numpy()
        positions = zip(collated["group_index"].tolist(), collated["slot_index"].tolist(), strict=True)
        for row, (piece, slot) in enumerate(positions):
            g, start, _ = batch[piece]
            results[g][start + slot] = logps[row]
        batch.clear()

    size = 0
    for piece in pieces:
        count = len(piece[2]["completion_ids"])
        if batch and size + count > batch_size:
            flush()
            size = 0
        batch.append(piece)
        size += count
    if batch:
        flush()
    return results


def score_item(item: Item, logprobs: np.ndarray) -> dict[str, float]:
    """Score-mode metrics of one item from its references' sequence log-probs."""
    s = np.asarray(logprobs, dtype=float)
    metrics = {"valid_mass": valid_mass(s)}
    if item.is_closed:
        return {**metrics, "answer_logprob": float(s[0]), "answer_prob": float(np.exp(s[0]))}
    metrics.update(score_distribution_match(s, item.weights))
    metrics["entropy"] = normalized_entropy(counts=softmax(s), support_size=len(s))
    return metrics


def score_task(
    model: Any,
    tokenizer: Any,
    task: Task,
    *,
    published_eot: bool = False,
    batch_size: int = 64,
    prefix_sharing: bool = True,
    published: bool = False,
) -> list[dict[str, Any] | None]:
    """Per-item score records (``None`` for items without a listed valid set).

    ``published`` (or the task's ``published: true``) adds the reference's distributional metrics
    (:func:`~spectrum_tune.evaluation.published.distributional_metrics`) on log-probs without the
    end-of-turn token, as the reference scores; unless ``published_eot`` already scored that way
    they come from a second pass, so our own metrics stay on complete outputs. Those log-probs are
    kept as ``published_logprobs``. ``model`` may be a :class:`~spectrum_tune.evaluation.backends.Backend`
    (a served model): it gives the log-probs of the groups its ``tokenizer`` builds.
    """
    scored = [item for item in task.items if item.references]
    if isinstance(model, Backend):
        tokenizer = model.tokenizer

    def logprobs_of(eot_omitted: bool) -> list[np.ndarray]:
        groups = [tokenize_for_scoring(item, tokenizer, eot_omitted) for item in scored]
        if isinstance(model, Backend):
            return model.group_logprobs(groups)
        return group_logprobs(model, groups, tokenizer.pad_token_id, batch_size, prefix_sharing)

    logprobs = logprobs_of(published_eot)
    published = published or task.published
    reference_logprobs = (logprobs if published_eot else logprobs_of(True)) if published else None
    records: list[dict[str, Any] | None] = []
    position = 0
    for item in task.items:
        if not item.references:
            records.append(None)
            continue
        s = logprobs[position]
        record = {"metrics": score_item(item, s), "logprobs": s.tolist(), "q": softmax(s).tolist()}
        if reference_logprobs is not None and not item.is_closed:
            reference = reference_logprobs[position]
            record["metrics"].update(distributional_metrics(item.weights, reference))
            record["published_logprobs"] = reference.tolist()
        records.append(record)
        position += 1
    return records
