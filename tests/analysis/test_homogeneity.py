"""Cross-model homogeneity metrics on hand-made counts and results files."""

import json
import math

import numpy as np
import pytest

from spectrum_tune.analysis.compare import compare_runs
from spectrum_tune.analysis.homogeneity import (
    counts_js,
    cross_bleu,
    cross_coverage,
    homogeneity,
    homogeneity_markdown,
    homogeneity_section,
    item_matrices,
    top1_agreement,
    verbatim_overlap,
)

A = {"red": 6, "blue": 3, "green": 1}
B = {"cat": 5, "dog": 5}


def test_identical_models_are_fully_homogeneous():
    assert counts_js(A, dict(A)) == pytest.approx(0.0, abs=1e-12)
    assert homogeneity(counts_js(A, dict(A))) == pytest.approx(1.0)
    assert top1_agreement(A, dict(A)) == 1.0
    assert cross_coverage(A, A) == 1.0
    gens = ["a red ball", "blue sky"]
    assert verbatim_overlap(gens, list(gens)) == 1.0
    assert cross_bleu(gens, gens) == pytest.approx(100.0)


def test_disjoint_supports_are_not_homogeneous():
    assert counts_js(A, B) == pytest.approx(math.log(2))
    assert homogeneity(counts_js(A, B)) == pytest.approx(0.0, abs=1e-12)
    assert top1_agreement(A, B) == 0.0
    assert cross_coverage(A, B) == 0.0
    assert verbatim_overlap(["x y"], ["z w"]) == 0.0


def test_partial_overlap_and_validity():
    other = {"red": 1, "purple": 9}
    # 6 of A's 10 samples are "red", which `other` also produced
    assert cross_coverage(A, other) == pytest.approx(0.6)
    # only red/blue are valid: 6 of the 9 valid samples are covered
    assert cross_coverage(A, other, {"red", "blue"}.__contains__) == pytest.approx(6 / 9)
    assert verbatim_overlap(["a", "b"], ["a", "c", "d", " a "]) == pytest.approx(0.5)
    assert top1_agreement({"x": 2, "y": 2}, {"y": 2, "x": 2}) == 1.0  # ties broken the same way
    assert math.isnan(counts_js({}, A)) and math.isnan(top1_agreement({}, A))


def _results(counts, q, generations):
    item = {
        "prompt": "Name a color.",
        "references": ["red", "blue", "green"],
        "weights": [1 / 3] * 3,
        "sample": {"metrics": {}, "counts": counts, "generations": generations},
        "score": {"metrics": {}, "logprobs": [0, 0, 0], "q": q},
    }
    closed = {
        "suite": "accuracy",
        "kind": "closed",
        "status": "ok",
        "split": "heldout",
        "n_items": 1,
        "metrics": {},
        "items": [dict(item)],
    }
    tasks = {
        "colors": {
            "suite": "spread",
            "kind": "open",
            "status": "ok",
            "split": "heldout",
            "n_items": 1,
            "metrics": {"sample": {"coverage": 1.0}},
            "items": [item],
        },
        "capital": closed,
    }
    return {"schema_version": 1, "model": "m", "adapter": None, "mode": "both", "tasks": tasks}


def test_section_matrices_and_compare(tmp_path):
    same = _results(A, [0.6, 0.3, 0.1], ["red", "blue"])
    other = _results({"purple": 4}, [0.1, 0.1, 0.8], ["purple"])
    section = homogeneity_section([same, same, other], ["a", "b", "c"], tmp_path)
    assert list(section["tasks"]) == ["colors"]  # closed tasks are left out
    hom = np.array(section["overall"]["homogeneity"])
    assert hom[0, 1] == pytest.approx(1.0) and hom[0, 2] == pytest.approx(0.0, abs=1e-12)
    assert section["overall"]["top1"][1][2] == 0.0
    assert section["overall"]["cross_coverage"][2][0] is None  # "purple" is not a valid colour
    assert section["overall"]["score_js"][0][1] == pytest.approx(0.0, abs=1e-12)
    assert section["summary"]["homogeneity"] == pytest.approx(1 / 3)
    assert all(open(p, "rb").read(4) == b"\x89PNG" for p in section["plots"])
    json.dumps(section, allow_nan=False)  # JSON-safe: nan became null

    for name, results in (("x", same), ("y", other)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.json").write_text(json.dumps(results))
    payload = compare_runs([tmp_path / "x", tmp_path / "y"], tmp_path / "cmp")
    assert payload["homogeneity"]["summary"]["top1"] == 0.0
    assert "## Cross-model homogeneity" in (tmp_path / "cmp" / "compare.md").read_text()
    assert (tmp_path / "cmp" / "plots" / "homogeneity_js.png").is_file()


def test_items_without_samples_only_get_score_js():
    item = {"prompt": "p", "references": ["a", "b"], "score": {"q": [0.5, 0.5]}}
    assert set(item_matrices([item, item])) == {"score_js"}


def _styled(prompt, counts, extracted, references=("red", "blue", "green")):
    item = {
        "prompt": prompt,
        "references": list(references),
        "weights": [1 / 3] * 3,
        "sample": {"metrics": {}, "counts": counts, "counts_extracted": extracted, "generations": []},
    }
    return {"tasks": {"colors": {"kind": "open", "status": "ok", "n_items": 1, "items": [item]}}}


def test_a_chat_and_a_plain_version_of_a_task_match_by_position_on_extracted_answers():
    chat = _styled(
        [{"role": "user", "content": "Name a color."}],
        {"sure! red is nice.": 5, "blue, i think": 5},
        {"red": 5, "blue": 5},
    )
    plain = _styled(
        "Question: Name a color.\nAnswer:\n",
        {"red": 5, "blue": 5, "i like paint": 7},
        {"red": 5, "blue": 5, "": 7},
    )  # unread samples are left out of the comparison
    section = homogeneity_section([chat, plain], ["chat", "plain"])
    task = section["tasks"]["colors"]
    assert (task["matched_by"], task["counts"]) == ("position", "counts_extracted")
    assert section["summary"]["homogeneity"] == pytest.approx(1.0)  # the whole texts would share nothing
    assert "position, extracted" in homogeneity_markdown(section)

    del plain["tasks"]["colors"]["items"][0]["sample"]["counts_extracted"]  # one run without extraction
    whole = homogeneity_section([chat, plain], ["chat", "plain"])["tasks"]["colors"]
    assert whole["counts"] == "counts" and whole["mean"]["homogeneity"] == pytest.approx(0.0, abs=1e-12)


def test_different_valid_sets_at_a_position_are_not_matched():
    chat = _styled([{"role": "user", "content": "Name a color."}], {"red": 1}, {"red": 1})
    other = _styled("Question: Name a pet.\nAnswer:\n", {"cat": 1}, {"cat": 1}, ("cat", "dog", "fish"))
    assert homogeneity_section([chat, other], ["a", "b"])["tasks"] == {}
