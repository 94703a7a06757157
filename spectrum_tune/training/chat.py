"""What a tokenizer's chat template does around an assistant turn, found by rendering probes.

Nothing here guesses from token names: a probe conversation is rendered with a marker as the
assistant's content, and the template's own output says

- where the assistant's content starts (right after the generation prompt; a template that puts
  text there, like Qwen3's empty ``<think>\\n\\n</think>\\n\\n`` block, is rendered with
  ``enable_thinking=False`` when that moves the block into the generation prompt, else refused);
- which token ends the turn: the first special token the template puts after the content
  (``<|im_end|>``, ``<end_of_turn>``, ``<|eot_id|>``, ``<|end|>``, ...), which differs from
  ``tokenizer.eos_token`` on many models (Gemma's ``<eos>``, Qwen2.5 base's ``<|endoftext|>``).

In-context sequences locate their outputs the same way, by construction: each output to score is
rendered as a unique marker, so the header text (``<|im_start|>output``) can never be mistaken
for an output's content, as a substring search would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .data import DataError

__all__ = [
    "ChatLayout",
    "chat_layout",
    "end_of_turn_id",
    "reference_end_id",
    "render_chat",
    "render_with_spans",
    "span_mask",
]

_MARKER = "\x00spectrum-marker-{}\x00"
_PROBE = [{"role": "user", "content": "Hi"}]
# Template switches that drop a reasoning block from the assistant turn, tried in this order.
_REASONING_SWITCHES: tuple[dict[str, Any], ...] = ({"enable_thinking": False},)


@dataclass(frozen=True)
class ChatLayout:
    """How to render chats with a tokenizer's template: extra template kwargs, the end-of-turn id."""

    end_of_turn_id: int
    end_of_turn_text: str
    template_kwargs: dict[str, Any] = field(default_factory=dict)


_LAYOUTS: dict[tuple[int, str], ChatLayout] = {}


def _special_ids(tokenizer: Any) -> set[int]:
    ids = set(tokenizer.all_special_ids)
    ids |= {index for index, token in tokenizer.added_tokens_decoder.items() if token.special}
    return ids


def _render(
    tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool, **kwargs: Any
) -> str:
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt, **kwargs
    )


def _content_gap(tokenizer: Any, kwargs: dict[str, Any]) -> tuple[str, str]:
    """(text between the generation prompt and the assistant content, text after the content)."""
    marker = _MARKER.format(0)
    prompt = _render(tokenizer, _PROBE, True, **kwargs)
    full = _render(tokenizer, [*_PROBE, {"role": "assistant", "content": marker}], False, **kwargs)
    if not full.startswith(prompt) or marker not in full:
        return full, ""
    start = full.index(marker)
    return full[len(prompt) : start], full[start + len(marker) :]


def chat_layout(tokenizer: Any) -> ChatLayout:
    """The tokenizer's :class:`ChatLayout` (computed once per tokenizer and template).

    Raises :class:`DataError` for a template that puts text (a reasoning block) before the
    assistant's content with no switch to leave it out, or that ends a turn with no special token.
    """
    key = (id(tokenizer), tokenizer.chat_template or "")
    if key in _LAYOUTS:
        return _LAYOUTS[key]
    where = f"chat template of {getattr(tokenizer, 'name_or_path', '') or type(tokenizer).__name__}"
    for kwargs in ({}, *_REASONING_SWITCHES):
        gap, after = _content_gap(tokenizer, kwargs)
        if not gap:
            break
    else:
        raise DataError(
            where,
            f"the template renders {gap[:40]!r} between the generation prompt and every assistant message "
            "(a reasoning block?) and has no switch such as enable_thinking=False to leave it out; "
            "references would be trained on it. Use a template without it",
        )
    special = _special_ids(tokenizer)
    after_ids = tokenizer(after, add_special_tokens=False)["input_ids"] if after else []
    end = next((token for token in after_ids if token in special), None)
    if end is None:
        raise DataError(
            where,
            f"no special token follows the assistant message (it renders {after[:40]!r}), so the end of a "
            "turn is unknown; add an end-of-turn token to the template",
        )
    layout = ChatLayout(int(end), tokenizer.convert_ids_to_tokens(int(end)), dict(kwargs))
    _LAYOUTS[key] = layout
    return layout


def end_of_turn_id(tokenizer: Any) -> int:
    """The id of the token the chat template puts after an assistant message."""
    return chat_layout(tokenizer).end_of_turn_id


def reference_end_id(tokenizer: Any, prompt: str | list[dict[str, str]]) -> int:
    """The token a reference ends with: the end-of-turn for chat prompts, EOS for plain text."""
    if not isinstance(prompt, str):
        return end_of_turn_id(tokenizer)
    if tokenizer.eos_token_id is None:
        raise ValueError("the tokenizer has no eos token; set `eos_token` in the config")
    return int(tokenizer.eos_token_id)


def render_chat(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """The template's text for ``messages`` with the layout's switches (e.g. enable_thinking=False)."""
    return _render(tokenizer, messages, add_generation_prompt, **chat_layout(tokenizer).template_kwargs)


def render_with_spans(
    tokenizer: Any, messages: list[dict[str, str]], indices: list[int]
) -> tuple[str, list[tuple[int, int]]]:
    """Render ``messages`` and return the character span of each message in ``indices``.

    A span covers the message's content and the end-of-turn token after it. Positions come from
    rendering each of those messages as a unique marker (construction, not search); a template
    that rewrites the content (strips it, say) is refused, since the spans would not line up.
    """
    layout = chat_layout(tokenizer)
    markers = {index: _MARKER.format(index + 1) for index in indices}
    probe = [{**m, "content": markers[i]} if i in markers else m for i, m in enumerate(messages)]
    marked = _render(tokenizer, probe, False, **layout.template_kwargs)
    for index in indices:
        if markers[index] not in marked:
            raise DataError(
                "chat template",
                f"the template does not render {messages[index]['role']!r} turns; in-context rows need a "
                "template that renders any role name (ChatML, Llama 3 style)",
            )
    text, spans, cursor, shift = [], [], 0, 0
    for index in sorted(indices, key=lambda i: marked.index(markers[i])):
        at = marked.index(markers[index])
        content = messages[index]["content"]
        text.append(marked[cursor:at])
        start = at + shift
        text.append(content)
        cursor = at + len(markers[index])
        shift += len(content) - len(markers[index])
        end = start + len(content)
        if marked.startswith(layout.end_of_turn_text, cursor):
            end += len(layout.end_of_turn_text)
        spans.append((start, end))
    text.append(marked[cursor:])
    rendered = "".join(text)
    if rendered != _render(tokenizer, messages, False, **layout.template_kwargs):
        raise DataError("chat template", "the template rewrites turn contents; cannot locate the outputs")
    order = sorted(indices, key=lambda i: marked.index(markers[i]))
    by_index = dict(zip(order, spans, strict=True))
    return rendered, [by_index[index] for index in indices]


def span_mask(tokenizer: Any, text: str, spans: list[tuple[int, int]]) -> tuple[list[int], list[int]]:
    """Token ids of ``text`` (no added special tokens) and a 0/1 mask of tokens overlapping ``spans``."""
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [
        int(any(begin < stop and finish > start for start, stop in spans))
        for begin, finish in encoded["offset_mapping"]
    ]
    return list(encoded["input_ids"]), mask
