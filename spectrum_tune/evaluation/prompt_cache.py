"""Encode a sampled prompt once: its key/value cache, expanded to the n rows that continue it.

``generate(num_return_sequences=n)`` copies the prompt n times before the prefill, so with a chat
template's system prompt and short answers most of sample mode's compute is the same prompt
encoded again and again. Here the prompt but its last token is forwarded once with batch 1; each
generate call then gets a copy of that cache repeated to its batch (``batch_repeat_interleave``)
and the full prompt ids, so ``generate`` forwards only the last prompt token before decoding.
Everything else ``generate`` does (logits processors, stop ids and strings, ``max_new_tokens``,
the global RNG draw per step) is unchanged, so for the same seed the token draws are those of
the copied-prompt path (up to float rounding of the prefill at a different batch size).

It holds only where the cache is plain key/value tensors per layer (full or sliding-window
attention, which decodes from a window cache exactly as generation always does). Recurrent or
hybrid states, quantized/static/offloaded caches, PEFT prompt learning (which injects its own
cache), rotary scaling that switches exactly where the prompt ends (longrope, dynamic NTK) and
one-token prompts fall back to the copied-prompt path, said once per reason.
"""

from __future__ import annotations

import copy
import inspect
import logging
from typing import Any

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

__all__ = ["encode_prompt", "expanded_cache", "notice_fallback", "own_loop_blocker", "sample_rows"]

logger = logging.getLogger(__name__)
_NOTICED: set[str] = set()
_PLAIN_LAYERS = (DynamicLayer, DynamicSlidingWindowLayer)


def notice_fallback(reason: str) -> None:
    """Say once per reason that sampling copies the prompt per sample (same draws, slower)."""
    if reason not in _NOTICED:
        _NOTICED.add(reason)
        logger.warning("spectrum-tune: sample mode encodes the prompt per sample (%s)", reason)


def _base_model(model: Any) -> Any:
    get_base = getattr(model, "get_base_model", None)  # PEFT wrappers
    return get_base() if callable(get_base) else model


def _unexpandable(cache: Any, model: Any, width: int) -> str | None:
    """Why ``cache`` cannot be repeated to n rows and continued exactly, or None."""
    if not isinstance(cache, DynamicCache):
        return f"{type(model).__name__} returned a {type(cache).__name__} prompt cache, not a DynamicCache"
    kinds = {type(layer).__name__ for layer in cache.layers if type(layer) not in _PLAIN_LAYERS}
    if kinds:
        return f"the prompt cache has {', '.join(sorted(kinds))} layers, not plain key/value ones"
    expected = _base_model(model).config.get_text_config().num_hidden_layers
    if len(cache.layers) != expected or cache.get_seq_length() != width:
        return f"the prompt cache is not {expected} layers of the prompt's {width} tokens"
    return None


def _rope_switch(model: Any, prompt_length: int) -> str | None:
    """Why prefilling ``prompt_length - 1`` tokens would pick other rotary frequencies than the
    full prompt's prefill, or None: longrope and dynamic NTK choose them from the longest
    position of each forward, so the two differ when the prompt's last token crosses the threshold."""
    config = _base_model(model).config.get_text_config()
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    kind = rope.get("rope_type", rope.get("type")) if isinstance(rope, dict) else None
    if kind not in ("longrope", "dynamic"):
        return None
    threshold = (
        rope.get("original_max_position_embeddings")
        or getattr(config, "original_max_position_embeddings", None)
        or getattr(config, "max_position_embeddings", None)
    )
    if threshold is not None and prompt_length - 1 <= threshold < prompt_length:
        return f"{kind} rotary scaling switches at {threshold} positions, where the prompt ends"
    return None


def encode_prompt(model: Any, input_ids: torch.Tensor) -> tuple[DynamicCache | None, str | None]:
    """``(cache, None)``: the cache of ``input_ids[:, :-1]`` (batch 1), or ``(None, reason)``.

    The last prompt token is left for ``generate``: it needs at least one uncached token, and
    that step yields the first sample token's distribution.
    """
    if input_ids.size(1) < 2:
        return None, "the prompt is a single token"
    peft_config = getattr(model, "active_peft_config", None)
    if peft_config is not None and getattr(peft_config, "is_prompt_learning", False):
        return None, "PEFT prompt learning adds its own virtual-token cache in generate"
    wanted = getattr(getattr(model, "generation_config", None), "cache_implementation", None)
    if wanted not in (None, "dynamic", "hybrid"):  # generate turns "hybrid" into the dynamic sliding one
        return None, f"the generation config asks for a {wanted!r} cache"
    reason = _rope_switch(model, input_ids.size(1))
    if reason is not None:
        return None, reason
    body = input_ids[:, :-1]
    kwargs: dict[str, Any] = {}
    if "logits_to_keep" in inspect.signature(_base_model(model).forward).parameters:
        kwargs["logits_to_keep"] = 1  # only the cache is wanted, not a [1, P, V] logits tensor
    output = model(input_ids=body, attention_mask=torch.ones_like(body), use_cache=True, **kwargs)
    cache = output.get("cache") if hasattr(output, "get") else getattr(output, "cache", None)
    reason = _unexpandable(cache, model, body.size(1))
    return (None, reason) if reason else (cache, None)


def expanded_cache(cache: DynamicCache, rows: int) -> DynamicCache:
    """A copy of the batch-1 ``cache`` repeated to ``rows`` rows (``generate`` extends it in place,
    so every call gets its own)."""
    fresh = copy.deepcopy(cache)
    fresh.batch_repeat_interleave(rows)
    return fresh


# generation_config fields that make generate add a logits processor beyond temperature/top-p
# (with the neutral sampling settings sample mode passes); any of them set -> generate decodes
_PROCESSOR_FIELDS = {
    "guidance_scale": (None, 1, 1.0),
    "sequence_bias": (None,),
    "bad_words_ids": (None,),
    "forced_bos_token_id": (None,),
    "forced_eos_token_id": (None,),
    "remove_invalid_values": (None, False),
    "exponential_decay_length_penalty": (None,),
    "suppress_tokens": (None,),
    "begin_suppress_tokens": (None,),
    "top_h": (None,),
    "watermarking_config": (None,),
    "min_length": (None, 0),
}


def own_loop_blocker(model: Any) -> str | None:
    """Why :func:`sample_rows` would not apply the processors ``generate`` would, or None."""
    config = getattr(_base_model(model), "generation_config", None)
    for name, neutral in _PROCESSOR_FIELDS.items():
        if getattr(config, name, None) not in neutral:
            return f"generation_config.{name} is set"
    return None


def sample_rows(
    model: Any,
    cache: DynamicCache,
    input_ids: torch.Tensor,
    rows: int,
    *,
    max_new_tokens: int,
    eos_ids: list[int],
    stop_criteria: Any,
    temperature: float,
    top_p: float,
) -> list[list[int]]:
    """``rows`` continuations of ``input_ids`` (``[1, P]``; ``cache`` holds all but its last token),
    each up to and including its stop token, at most ``max_new_tokens`` tokens.

    The loop ``generate`` runs, minus the rows that have ended: a finished row leaves the batch
    (its cache rows are dropped), so a batch costs the tokens its samples have, not its longest
    sample times its size. The draws stay ``generate``'s: its warpers (temperature, then top-p)
    in float32, then one ``torch.multinomial`` per step over all ``rows`` rows, finished ones
    holding a placeholder distribution, because the multinomial's random numbers depend only on
    the shape it is given (each row's draw reads its own slice), so every live row gets the same
    random numbers it gets from ``generate``.
    """
    from transformers.generation.logits_process import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopPLogitsWarper,
    )

    warpers = LogitsProcessorList()
    if temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(temperature))
    if top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=top_p, min_tokens_to_keep=1))
    device = input_ids.device
    cache = expanded_cache(cache, rows)
    live = torch.arange(rows, device=device)  # which of the rows are still running
    sequences = input_ids.expand(rows, -1)  # the live rows' ids so far (stop strings read them)
    step_ids = input_ids[:, -1:].expand(rows, 1)
    stops = torch.tensor(eos_ids, device=device)
    generated: list[list[int]] = [[] for _ in range(rows)]
    for _ in range(max_new_tokens):
        logits = model(input_ids=step_ids, cache=cache, use_cache=True).logits[:, -1].float()
        scores = warpers(sequences, logits)
        probs = torch.zeros((rows, scores.size(-1)), device=device)
        probs[:, 0] = 1.0  # the placeholder of finished rows; their draw is discarded
        probs[live] = torch.softmax(scores, dim=-1)
        tokens = torch.multinomial(probs, num_samples=1).squeeze(1)[live]
        sequences = torch.cat([sequences, tokens[:, None]], dim=-1)
        for row, token in zip(live.tolist(), tokens.tolist(), strict=True):
            generated[row].append(token)
        done = torch.isin(tokens, stops)
        if stop_criteria is not None:
            done |= stop_criteria(sequences, None)
        if bool(done.all()):
            break
        if bool(done.any()):
            keep = (~done).nonzero().squeeze(1)
            cache.batch_select_indices(keep)
            live, sequences, tokens = live[keep], sequences[keep], tokens[keep]
        step_ids = tokens[:, None]
    return generated
