"""A training file that is not UTF-8 gets the one-line ``file:line`` error, not a traceback."""

from __future__ import annotations

import json

import pytest

from spectrum_tune.training.data import DataError, read_rows


def test_jsonl_in_latin1_names_the_line_of_the_first_bad_byte(tmp_path):
    path = tmp_path / "train.jsonl"
    good = json.dumps({"prompt": "Name a state.", "references": ["Ohio"]})
    bad = json.dumps({"prompt": "Name a café.", "references": ["Flore"]}, ensure_ascii=False)
    path.write_bytes(f"{good}\n{good}\n{bad}\n".encode("latin-1"))
    with pytest.raises(DataError) as caught:
        list(read_rows(path))
    message = str(caught.value)
    assert message.startswith(f"{path}:3: not UTF-8") and "\n" not in message
    assert "0xe9" in message  # the byte, so the user can find it


def test_json_array_in_latin1_names_its_line(tmp_path):
    path = tmp_path / "train.json"
    path.write_bytes(
        '[\n  {"prompt": "a", "references": ["b"]},\n  {"prompt": "caf\xe9", "references": ["x"]}\n]'.encode(
            "latin-1"
        )
    )
    with pytest.raises(DataError, match=r"train\.json:3: not UTF-8"):
        list(read_rows(path))


def test_utf8_files_read_as_before(tmp_path):
    path = tmp_path / "train.jsonl"
    row = {"prompt": "Name a café.", "references": ["Flore"]}
    path.write_text(json.dumps(row, ensure_ascii=False) + "\n\n", encoding="utf-8")
    assert list(read_rows(path)) == [(f"{path}:1", row)]


def test_a_data_error_survives_pickling_whole():
    """The demos train in worker processes: the error must come back as itself, message intact."""
    import pickle

    error = DataError("data.jsonl:3", "'references' is empty")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is DataError and str(back) == "data.jsonl:3: 'references' is empty"
    assert (back.where, back.problem) == (error.where, error.problem)
