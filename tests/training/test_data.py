"""Loading, validation (file:line errors), grouping and tokenisation of multi-reference rows."""

import json
import random

import pytest
from datasets import Dataset

from spectrum_tune.training.data import DataError, incontext_messages, load_multiref
from spectrum_tune.training.tokenize import render_incontext, sample_incontext_row, tokenize_group

from ..toy import toy_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


def _write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


GOOD = {"prompt": "Name a color.", "references": ["red", "blue"], "weights": [3, 1]}


def test_loads_and_normalises_weights(tmp_path):
    data = load_multiref(_write_jsonl(tmp_path / "d.jsonl", [GOOD, {"prompt": "x", "references": ["a"]}]))
    assert data[0]["weights"] == [0.75, 0.25]
    assert data[1]["weights"] == [1.0]
    assert data[0]["source"].endswith("d.jsonl:1")


def test_json_and_parquet(tmp_path):
    (tmp_path / "d.json").write_text(json.dumps([GOOD]))
    assert load_multiref(tmp_path / "d.json")[0]["references"] == ["red", "blue"]
    Dataset.from_list([GOOD]).to_parquet(str(tmp_path / "d.parquet"))
    assert load_multiref(tmp_path / "d.parquet")[0]["weights"] == [0.75, 0.25]


def test_plain_rows_are_grouped_with_empirical_weights(tmp_path):
    rows = [
        {"prompt": "Pick.", "completion": "1"},
        {"prompt": "Pick.", "completion": "2"},
        {"prompt": "Pick.", "completion": "1"},
        {"prompt": "Other.", "completion": "z"},
    ]
    data = load_multiref(_write_jsonl(tmp_path / "p.jsonl", rows))
    by_prompt = {row["prompt"]: row for row in data}
    assert by_prompt["Pick."]["references"] == ["1", "2"]
    assert by_prompt["Pick."]["weights"] == pytest.approx([2 / 3, 1 / 3])
    assert by_prompt["Other."]["references"] == ["z"]


@pytest.mark.parametrize(
    "line, problem",
    [
        ('{"prompt": "x", "references": ["a"]', "malformed JSON"),
        ({"references": ["a"]}, "missing field 'prompt'"),
        ({"prompt": "x"}, "missing field 'references'"),
        ({"prompt": "x", "references": []}, "'references' is empty"),
        ({"prompt": "x", "references": ["a", "a"]}, "duplicate reference 'a'"),
        ({"prompt": "x", "references": ["a", "b"], "weights": [1]}, "has 1 entries but 'references' has 2"),
        ({"prompt": "x", "references": ["a", "b"], "weights": [1, -1]}, "negative"),
        ({"prompt": "x", "references": ["a", "b"], "weights": [0, 0]}, "all zero"),
        ('{"prompt": "x", "references": ["a", "b"], "weights": [1, NaN]}', "is nan"),
        ({"prompt": "x", "references": ["a", 3]}, "reference 1 is not a string"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, line, problem):
    path = _write_jsonl(tmp_path / "bad.jsonl", [GOOD, line])
    with pytest.raises(DataError) as caught:
        load_multiref(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:2: ")
    assert problem in message


def test_missing_file_and_empty_file(tmp_path):
    with pytest.raises(DataError, match="no such data file"):
        load_multiref(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no rows"):
        load_multiref(tmp_path / "empty.jsonl")


def test_tokenize_chat_prompt_ends_each_reference_with_end_of_turn(tokenizer):
    row = {
        "prompt": [{"role": "user", "content": "Name a color."}],
        "references": ["red", "blue"],
        "weights": [0.5, 0.5],
        "source": "t:1",
        "format": "multiref",
    }
    out = tokenize_group(row, tokenizer, max_length=64)
    prompt_text = tokenizer.decode(out["prompt_ids"])
    assert prompt_text.endswith("<|im_start|>assistant\n")
    for reference, ids in zip(row["references"], out["completion_ids"], strict=True):
        assert ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids[:-1]) == reference


def test_tokenize_plain_prompt(tokenizer):
    row = {"prompt": "Pick a number: ", "references": ["7"], "weights": [1.0], "source": "t:1"}
    out = tokenize_group(row, tokenizer, max_length=64)
    assert tokenizer.decode(out["prompt_ids"] + out["completion_ids"][0]) == "Pick a number: 7<|im_end|>"


def test_reference_longer_than_max_length_is_an_error(tokenizer):
    row = {"prompt": "x", "references": ["red " * 40], "weights": [1.0], "source": "f.jsonl:9"}
    with pytest.raises(DataError, match=r"^f\.jsonl:9: .*longer than max_length=16"):
        tokenize_group(row, tokenizer, max_length=16)


def test_incontext_loss_falls_on_outputs_and_end_of_turn(tokenizer):
    messages = incontext_messages(["red", "blue", "green"])
    out = render_incontext(messages, tokenizer)
    ids = out["prompt_ids"] + out["completion_ids"][0]
    mask = [0] * len(out["prompt_ids"]) + out["completion_mask"][0]
    trained = tokenizer.decode([i for i, m in zip(ids, mask, strict=True) if m])
    # No description: the first output ("red") carries no loss.
    assert trained == "blue<|im_end|>green<|im_end|>"
    described = render_incontext(incontext_messages(["red", "blue"], description="Colors."), tokenizer)
    trained = tokenizer.decode(
        [i for i, m in zip(described["completion_ids"][0], described["completion_mask"][0], strict=True) if m]
    )
    assert trained == "red<|im_end|>blue<|im_end|>"
    assert "<|im_start|>output\n" in tokenizer.decode(described["prompt_ids"])


def test_incontext_rows_load_and_tokenize(tmp_path, tokenizer):
    path = _write_jsonl(tmp_path / "ic.jsonl", [{"description": "Colors.", "outputs": ["red", "blue"]}])
    row = load_multiref(path)[0]
    assert row["format"] == "incontext"
    assert tokenize_group(row, tokenizer, max_length=128)["weights"] == [1.0]
    with pytest.raises(DataError, match=r"ic2\.jsonl:1: .*'outputs'"):
        load_multiref(_write_jsonl(tmp_path / "ic2.jsonl", [{"outputs": []}]))


def test_sample_incontext_row_draws_from_weights():
    row = {"prompt": "Flip.", "references": ["heads", "tails"], "weights": [1.0, 0.0]}
    messages = sample_incontext_row(row, 5, random.Random(0), keep_description=1.0)
    assert messages[0] == {"role": "description", "content": "Flip."}
    assert [m["content"] for m in messages[1:]] == ["heads"] * 5


# -- strict fields, message references, normalisation (issue 17 item 2) ------------------------


@pytest.mark.parametrize(
    "row, problem",
    [
        (
            {**GOOD, "weight": [1, 1]},
            "unknown field 'weight' in a multi-reference row; did you mean 'weights'?",
        ),
        ({**GOOD, "note": "x"}, "unknown field 'note' in a multi-reference row; remove or rename it (known:"),
        ({**GOOD, "completion": "x"}, "'completion' belongs to TRL's single-target rows"),
        ({"prompt": "x", "completion": "a", "weights": [1]}, "'weights' belongs to a multi-reference row"),
        ({"prompt": "x", "completions": "a"}, "unknown field 'completions'; did you mean 'completion'?"),
        ({"prompt": "x", "referneces": ["a"]}, "did you mean 'references'?"),
        ({"promt": "x", "references": ["a"]}, "did you mean 'prompt'?"),
        ({"question": "x", "answer": "y"}, "no training target: give 'references'"),
        (
            {"prompt": "x", "references": ["Emma", "emma", "Emma.", " Ava"]},
            "'Emma' and 'emma' (entries 0 and 1)",
        ),
        (
            {"prompt": "x", "references": [[{"role": "assistant", "content": "a"}]]},
            "reference 0 is not a string",
        ),
    ],
)
def test_unknown_fields_and_merged_references_are_errors(tmp_path, row, problem):
    path = _write_jsonl(tmp_path / "bad.jsonl", [GOOD, row])
    with pytest.raises(DataError) as caught:
        load_multiref(path)
    assert str(caught.value).startswith(f"{path}:2: ")
    assert problem in str(caught.value)


def test_normalisation_error_names_the_eval_normalisation(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"prompt": "x", "references": ["Paris.", "paris"]}])
    with pytest.raises(DataError, match=r"normalize_answer .*casefold.*add up their weights"):
        load_multiref(path)


def test_chat_references_may_be_assistant_messages_and_keep_tools(tmp_path, tokenizer):
    chat = [{"role": "user", "content": "Name a color."}]
    rows = [
        {
            "prompt": chat,
            "references": [[{"role": "assistant", "content": "red"}], "blue"],
            "tools": '[{"name": "pick"}]',
            "chat_template_kwargs": {"greeting": "hi"},
        },
        {"prompt": chat, "references": [[{"role": "assistant", "content": "red", "tool_calls": []}]]},
    ]
    data = load_multiref(_write_jsonl(tmp_path / "m.jsonl", rows[:1]))
    assert data[0]["references"] == ["red", "blue"]
    assert json.loads(data[0]["template_kwargs"]) == {"tools": [{"name": "pick"}], "greeting": "hi"}
    with pytest.raises(DataError, match=r"reference 0 is not a string.*one assistant message"):
        load_multiref(_write_jsonl(tmp_path / "t.jsonl", rows[1:]))


def test_trl_rows_are_refused_by_load_multiref_with_the_way_out(tmp_path):
    with pytest.raises(DataError, match="pass such a dataset to SpectrumTrainer directly"):
        load_multiref(_write_jsonl(tmp_path / "t.jsonl", [{"text": "a b c"}]))


def test_mixed_prompt_kinds_name_the_rows(tmp_path):
    rows = [GOOD, {"prompt": [{"role": "user", "content": "x"}], "references": ["a"]}]
    path = _write_jsonl(tmp_path / "mixed.jsonl", rows)
    with pytest.raises(DataError, match=rf"^{path}:2: has a chat-message prompt but {path}:1 has a string"):
        load_multiref(path)


def test_split_rows_groups_shared_prompts_and_keeps_trl_rows():
    from spectrum_tune.training.formats import split_rows

    rows = [
        {"prompt": "Pick.", "completion": "1"},
        {"prompt": "Pick.", "completion": "2"},
        {"prompt": "Pick.", "completion": "1"},
        {"prompt": "Other.", "completion": "z"},
        {"prompt": "Other.", "completion": "z"},
        {"prompt": "Name.", "references": ["a", "b"], "completion": None},
    ]
    spectrum, single = split_rows((f"row {i + 1}", row) for i, row in enumerate(rows))
    assert [row["references"] for row in spectrum] == [["a", "b"], ["1", "2"]]
    assert spectrum[1]["weights"] == pytest.approx([2 / 3, 1 / 3])
    assert single == [3, 4]  # one completion per prompt: TRL rows, duplicates kept as TRL would


def test_split_rows_refuses_mixed_trl_formats():
    from spectrum_tune.training.formats import split_rows

    rows = [{"text": "a"}, {"messages": [{"role": "user", "content": "b"}]}]
    with pytest.raises(DataError, match=r"^row 2: a 'messages' row after 'text' rows"):
        split_rows((f"row {i + 1}", row) for i, row in enumerate(rows))


def test_normalize_answer_is_shared_with_the_eval():
    from spectrum_tune.evaluation.metrics import normalize_answer as eval_normalize
    from spectrum_tune.text import normalize_answer

    assert eval_normalize is normalize_answer
    assert normalize_answer(' "Emma." ') == "emma"


def test_tool_call_messages_in_a_prompt_are_kept(tmp_path):
    call = {"type": "function", "function": {"name": "pick", "arguments": {"low": 1}}}
    prompt = [
        {"role": "user", "content": "Pick."},
        {"role": "assistant", "tool_calls": [call]},
        {"role": "tool", "name": "pick", "content": "3"},
    ]
    data = load_multiref(_write_jsonl(tmp_path / "t.jsonl", [{"prompt": prompt, "references": ["3", "4"]}]))
    assert data[0]["prompt"][1]["tool_calls"][0]["function"]["name"] == "pick"
    assert data[0]["prompt"][2]["name"] == "pick"
    bad = [{"role": "user", "content": "Pick."}, {"role": "assistant"}]
    with pytest.raises(DataError, match="'prompt' message 1 must be an object with string 'role'"):
        load_multiref(_write_jsonl(tmp_path / "b.jsonl", [{"prompt": bad, "references": ["3"]}]))
