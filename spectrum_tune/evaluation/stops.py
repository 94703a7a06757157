"""Where a sampled output ends: the model's stop list plus the chat template's end-of-turn.

``generate`` is given every id of the checkpoint's ``generation_config.eos_token_id`` (instruct
models list several: Llama 3 ``<|end_of_text|>``, ``<|eom_id|>``, ``<|eot_id|>``; Phi-3 ``<|end|>``,
``<|endoftext|>``) and the token the chat template ends an assistant turn with, which is not
always ``tokenizer.eos_token`` (Gemma ends turns with ``<end_of_turn>``, its EOS is ``<eos>``).
Passing only ``tokenizer.eos_token_id`` would override that list and let samples run on past the
end of their turn. Text is decoded without special tokens, so a sample reads ``Texas``, not
``Texas<|im_end|>``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..training.chat import reference_end_id

__all__ = ["cut_at_stop", "decode_sample", "stop_token_ids"]


def stop_token_ids(model: Any, tokenizer: Any, prompt: str | list[dict[str, str]]) -> list[int]:
    """Sorted ids that end a sample of ``prompt``: the model's stop list plus the reference end token."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is None:
        configured = []
    elif isinstance(configured, int):
        configured = [configured]
    stops = {int(token) for token in configured}
    stops.add(reference_end_id(tokenizer, prompt))
    return sorted(stops)


def cut_at_stop(ids: Sequence[int], stop_ids: set[int]) -> list[int]:
    """``ids`` up to (not including) the first stop id."""
    for position, token in enumerate(ids):
        if token in stop_ids:
            return list(ids[:position])
    return list(ids)


def decode_sample(tokenizer: Any, ids: Sequence[int], stop_ids: set[int]) -> str:
    """The text of a generated continuation, cut at its first stop id, special tokens dropped."""
    return tokenizer.decode(cut_at_stop(ids, stop_ids), skip_special_tokens=True)
