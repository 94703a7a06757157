"""A built row's provenance (``metadata``) is accepted by the loader and never trained on."""

import pytest

from spectrum_tune.training.data import DataError, load_multiref

from .conftest import write_jsonl


def test_metadata_is_accepted_and_dropped(tmp_path):
    path = write_jsonl(
        tmp_path / "rows.jsonl",
        [
            {
                "prompt": "a",
                "references": ["x", "y"],
                "metadata": {"teachers": ["t"], "counts": {"x": {"t": 2}}},
            },
            {"prompt": "b", "references": ["z"]},
        ],
    )
    dataset = load_multiref(str(path))
    assert "metadata" not in dataset.column_names and dataset["references"] == [["x", "y"], ["z"]]


def test_metadata_must_be_an_object(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"prompt": "a", "references": ["x"], "metadata": "t"}])
    with pytest.raises(DataError, match=rf"^{path}:1: 'metadata' must be an object"):
        load_multiref(str(path))
