"""Extraction, classes, validity and weights of data-build, on hand-written samples (no model)."""

import re

import numpy as np
import pytest

from spectrum_tune.data_build.classes import SEED, answer_classes, check_validity, class_weights
from spectrum_tune.data_build.inputs import PromptRow
from spectrum_tune.evaluation.validators import parse_validator


def _row(**kwargs):
    return PromptRow("f.jsonl:1", "Name a color.", **kwargs)


def test_classes_merge_spellings_by_the_eval_normalisation_and_count_per_teacher():
    samples = {"a": ["Red", "red.", "blue", "Red"], "b": ["RED", "green", ""]}
    classes, unreadable = answer_classes(samples, _row(seeds={"Blue": 1}))
    by_key = {c.key: c for c in classes}
    assert [c.key for c in classes] == ["red", "blue", "green"]  # most frequent first
    assert by_key["red"].counts == {"a": 3, "b": 1}
    assert by_key["red"].text == "Red"  # the most common spelling is the reference
    assert by_key["blue"].counts == {"a": 1, SEED: 1}
    assert unreadable == {"b": 1}  # the empty sample is counted, not dropped


def test_multi_line_answers_are_one_class_per_first_line_as_the_loader_requires():
    stories = ["Once upon a time\nthere was a fox.", "Once upon a time\nthere was a cat.", "The end"]
    classes, _ = answer_classes({"a": [*stories, "once upon a time."]}, _row())
    # the loader refuses references that normalise alike (the eval counts them as one answer)
    assert [c.total for c in classes] == [3, 1]


def test_extraction_reads_answers_with_the_eval_rules():
    row = _row(known=["red", "green"])
    samples = {"a": ["I think red is nice", "Answer: green", "no idea"]}
    classes, unreadable = answer_classes(samples, row, extract="first_valid")
    assert [c.text for c in classes] == ["red", "green"] and unreadable == {"a": 1}
    classes, _ = answer_classes(
        {"a": ["Answer: 7", "Answer: 7", "x"]}, row, extract="regex", pattern=re.compile(r"Answer: (\d+)")
    )
    assert [(c.text, c.total) for c in classes] == [("7", 2)]
    classes, _ = answer_classes({"a": ["thinking...\nblue"]}, row, extract="last_line")
    assert classes[0].text == "blue"


def test_a_classifier_merges_classes_the_normalisation_keeps_apart():
    long_a = "a deep shade of red like wine in the glass"
    long_b = "a deep shade of red like blood in the vein"
    other = "something else entirely and quite long too"
    same_start = lambda a, b: 1.0 if a.split()[:5] == b.split()[:5] else 0.0  # noqa: E731
    classes, _ = answer_classes({"a": [long_a, long_b, other]}, _row(), classifier=same_start, threshold=0.5)
    assert sorted(c.total for c in classes) == [1, 2]


def test_validator_and_known_set_reject_with_reasons():
    row = _row(known=["red", "blue"], validator=parse_validator({"regex": "[a-z]+"}, "x", None))
    classes, _ = answer_classes({"a": ["red", "green", "42"]}, row)
    check_validity(classes, row)  # the known set is only measured by default
    assert [c.kept for c in classes] == [True, True, False]
    assert classes[2].reasons == ["invalid (validator)"]
    classes, _ = answer_classes({"a": ["red", "green", "42"]}, row)
    check_validity(classes, row, valid_set_filters=True)
    # valid as the eval judges it: listed OR accepted by the validator
    assert [c.kept for c in classes] == [True, True, False]
    row = _row(known=["red", "blue"])
    classes, _ = answer_classes({"a": ["red", "green"]}, row)
    check_validity(classes, row, valid_set_filters=True)
    assert [c.kept for c in classes] == [True, False]


def test_agreement_keeps_answers_seen_m_times_or_by_two_teachers_and_every_seed():
    samples = {"a": ["red", "red", "blue", "green", "pink"], "b": ["blue", "teal"]}
    classes, _ = answer_classes(samples, _row(seeds={"pink": 1}))
    check_validity(classes, _row(), agreement=True, min_count=2, min_teachers=2)
    kept = {c.text for c in classes if c.kept}
    assert kept == {"red", "blue", "pink"}
    rejected = {c.text: c.reasons for c in classes if not c.kept}
    assert rejected == {
        "green": ["agreement (seen 1x by 1 teacher(s))"],
        "teal": ["agreement (seen 1x by 1 teacher(s))"],
    }


def test_weights_counts_uniform_teacher_temper_and_max_k():
    classes, _ = answer_classes({"a": ["red"] * 6 + ["blue"] * 3 + ["green"]}, _row())
    _, w, _ = class_weights(classes, "counts")
    assert w == pytest.approx([0.6, 0.3, 0.1])
    _, w, _ = class_weights(classes, "uniform")
    assert w == pytest.approx([1 / 3] * 3)
    _, w, _ = class_weights(classes, "teacher", teacher_probs=np.array([0.2, 0.2, 0.1]))
    assert w == pytest.approx([0.4, 0.4, 0.2])  # renormalised over the kept classes
    _, w, _ = class_weights(classes, "counts", temper=2.0)
    expected = np.sqrt([0.6, 0.3, 0.1])
    assert w == pytest.approx(list(expected / expected.sum()))
    chosen, w, cut = class_weights(classes, "counts", max_k=2)
    assert [c.text for c in chosen] == ["red", "blue"] and [c.text for c in cut] == ["green"]
    assert w == pytest.approx([2 / 3, 1 / 3])
    with pytest.raises(ValueError, match="one probability per kept class"):
        class_weights(classes, "teacher", teacher_probs=np.array([1.0]))
