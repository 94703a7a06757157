"""Reading what a user has into prompt rows; every bad row is one line naming file and line."""

import pytest

from spectrum_tune.data_build.inputs import read_prompts
from spectrum_tune.training.data import DataError

from .conftest import write_jsonl


def test_prompts_valid_sets_validators_and_sft_seeds(tmp_path):
    (tmp_path / "names.txt").write_text("ann\nbob\n")
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"prompt": "Name a color.", "references": ["red", "blue"], "id": 7},
            {"prompt": "Pick a number.", "validator": {"int_range": {"min": 1, "max": 9}}},
            {"prompt": "Name a person.", "completion": "ann", "validator": {"one_of_file": "names.txt"}},
            {"prompt": "Name a person.", "completion": "bob"},
            {"prompt": "Name a person.", "completion": "ann"},
            {"messages": [{"role": "user", "content": "Hi?"}, {"role": "assistant", "content": "Hello"}]},
        ],
    )
    rows = read_prompts(path)
    assert [r.prompt for r in rows[:3]] == ["Name a color.", "Pick a number.", "Name a person."]
    assert rows[0].known == ["red", "blue"] and rows[0].validator is None
    assert rows[1].validator("5") and not rows[1].validator("10")
    assert rows[2].seeds == {"ann": 2, "bob": 1} and rows[2].validator("bob")
    assert rows[3].prompt == [{"role": "user", "content": "Hi?"}] and rows[3].seeds == {"Hello": 1}


def test_seed_references_turns_one_reference_sft_rows_into_seeds(tmp_path):
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            {"prompt": "Name a fruit.", "references": ["apple"]},
            {"prompt": "Name a fruit.", "references": ["pear"]},
        ],
    )
    (row,) = read_prompts(path, seed_references=True)
    assert row.known == [] and row.seeds == {"apple": 1, "pear": 1}
    (row,) = read_prompts(path)
    assert row.known == ["apple", "pear"] and row.seeds == {}


def test_a_default_validator_applies_to_rows_without_their_own(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "a"}, {"prompt": "b", "validator": {"regex": "x"}}])
    rows = read_prompts(path, default_validator={"int_range": {"min": 0, "max": 3}})
    assert rows[0].validator.kind == "int_range" and rows[1].validator.kind == "regex"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"text": "no prompt"}, "missing field 'prompt'"),
        ({"prompt": ""}, "'prompt' is an empty string"),
        ({"prompt": "a", "references": "red"}, "'references' (a known valid set) must be a list"),
        ({"prompt": "a", "validator": {"int_range": {"min": 3, "max": 1}}}, "min <= max"),
        ({"prompt": "a", "completion": ["x", "y"]}, "'completion' must be a string"),
        ({"messages": [{"role": "user", "content": "a"}]}, "must end with an assistant turn"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path, row, message):
    path = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "fine"}, row])
    with pytest.raises(DataError) as error:
        read_prompts(path)
    assert str(error.value).startswith(f"{path}:2: ") and message in str(error.value)
    assert "\n" not in str(error.value)


def test_malformed_json_and_empty_files(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": \n')
    with pytest.raises(DataError, match=rf"^{path}:2: malformed JSON"):
        read_prompts(path)
    path.write_text("\n")
    with pytest.raises(DataError, match="no prompt rows"):
        read_prompts(path)


def test_hub_datasets_and_parquet_files(tmp_path, monkeypatch):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"question": "Name a color.", "id": 1}, {"question": "Name a fruit.", "id": 2}]
    calls = []

    def hub(name, split=None, **kwargs):
        calls.append((name, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", hub)
    read = read_prompts("someone/prompts", split="validation", prompt_field="question")
    assert calls == [("someone/prompts", "validation")] and [r.prompt for r in read] == [
        "Name a color.",
        "Name a fruit.",
    ]
    assert read[1].where == "someone/prompts[validation] row 2"
    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": "a"}, {"prompt": ""}]), path)
    with pytest.raises(DataError, match=rf"^{path}:row 2: 'prompt' is an empty string"):
        read_prompts(path)
