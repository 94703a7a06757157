"""End-of-turn, reasoning blocks and in-context spans come from rendering the template, not guesses."""

from __future__ import annotations

import pytest

from spectrum_tune.evaluation.steer import heldout_group
from spectrum_tune.training.chat import chat_layout, end_of_turn_id, render_with_spans
from spectrum_tune.training.data import DataError, incontext_messages
from spectrum_tune.training.tokenize import _prompt_ids, render_incontext, tokenize_group

from ..families.builders import BY_NAME, QWEN3, build_tokenizer
from ..toy import toy_tokenizer

CHAT = [{"role": "user", "content": "Name a color."}]


def test_gemma_turns_end_with_end_of_turn_not_eos():
    tokenizer = build_tokenizer(BY_NAME["gemma2"])
    assert tokenizer.eos_token == "<eos>"
    assert end_of_turn_id(tokenizer) == tokenizer.convert_tokens_to_ids("<end_of_turn>")
    group = tokenize_group({"prompt": CHAT, "references": ["red"], "weights": [1.0]}, tokenizer, None)
    # not `red <end_of_turn> \n <eos>`: two tokens the model never emits after its answer
    assert tokenizer.convert_ids_to_tokens(group["completion_ids"][0]) == ["re", "d", "<end_of_turn>"]


def test_plain_text_rows_end_with_eos():
    tokenizer = build_tokenizer(BY_NAME["qwen2"])  # eos <|endoftext|>, end-of-turn <|im_end|>
    group = tokenize_group(
        {"prompt": "Name a color:", "references": [" red"], "weights": [1.0]}, tokenizer, None
    )
    assert group["completion_ids"][0][-1] == tokenizer.eos_token_id
    chat = tokenize_group({"prompt": CHAT, "references": ["red"], "weights": [1.0]}, tokenizer, None)
    assert tokenizer.convert_ids_to_tokens(chat["completion_ids"][0][-1]) == "<|im_end|>"


def test_qwen3_reasoning_block_goes_into_the_prompt_with_enable_thinking_false():
    tokenizer = build_tokenizer(BY_NAME["qwen3"])
    assert chat_layout(tokenizer).template_kwargs == {"enable_thinking": False}
    group = tokenize_group({"prompt": CHAT, "references": ["red"], "weights": [1.0]}, tokenizer, None)
    assert tokenizer.decode(group["completion_ids"][0]) == "red<|im_end|>"  # no <think></think> trained
    # sample mode starts after the (empty) block, so a "\n" stop does not cut the output at <think>
    assert tokenizer.decode(_prompt_ids(CHAT, tokenizer)).endswith(
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


def test_a_reasoning_block_without_a_switch_is_refused():
    tokenizer = build_tokenizer(BY_NAME["qwen3"])
    tokenizer.chat_template = QWEN3.replace(
        "enable_thinking is defined and enable_thinking is false", "false"
    )
    with pytest.raises(DataError, match=r"<think>.*no switch such as enable_thinking=False"):
        tokenize_group({"prompt": CHAT, "references": ["red"], "weights": [1.0]}, tokenizer, None)


def test_a_template_without_an_end_of_turn_token_is_refused():
    tokenizer = toy_tokenizer()
    tokenizer.chat_template = (
        "{% for m in messages %}{{ m['role'] + ': ' + m['content'] + '\\n' }}{% endfor %}"
        "{% if add_generation_prompt %}{{ 'assistant: ' }}{% endif %}"
    )
    with pytest.raises(DataError, match="no special token follows the assistant message"):
        end_of_turn_id(tokenizer)


def test_incontext_outputs_that_occur_in_the_role_header_are_found_by_construction():
    tokenizer = toy_tokenizer()
    # "t", "u", "p" all occur in "<|im_start|>output\n": a substring search put the loss there
    rendered = render_incontext(incontext_messages(["t", "u", "p"], description="Colors."), tokenizer, None)
    ids, mask = rendered["completion_ids"][0], rendered["completion_mask"][0]
    assert tokenizer.convert_ids_to_tokens([i for i, hit in zip(ids, mask, strict=True) if hit]) == [
        "t",
        "<|im_end|>",
        "u",
        "<|im_end|>",
        "p",
        "<|im_end|>",
    ]


def test_training_and_steer_scorer_share_the_span_helper():
    tokenizer = toy_tokenizer()
    messages = incontext_messages(["red", "output"], description="Colors.")
    text, spans = render_with_spans(tokenizer, messages, [2])
    assert text[spans[0][0] : spans[0][1]] == "output<|im_end|>"
    group = heldout_group(messages, tokenizer)
    assert tokenizer.decode(group["completion_ids"][0]) == "output<|im_end|>"


def test_a_template_that_drops_incontext_roles_is_refused():
    tokenizer = build_tokenizer(BY_NAME["phi3"])  # renders system/user/assistant only
    with pytest.raises(DataError, match="does not render 'output' turns"):
        render_incontext(incontext_messages(["a", "b"], description="d"), tokenizer, None)
