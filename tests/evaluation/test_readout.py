"""Strict int_range, answer extraction, format instruction and the Verbalized Sampling parser."""

import math

import numpy as np
import pytest

from spectrum_tune.evaluation.extract import append_instruction, extract_answer
from spectrum_tune.evaluation.sample import extracted_counts
from spectrum_tune.evaluation.tasks import Item, load_task, parse_validator
from spectrum_tune.evaluation.verbalized import parse_verbalized, verbalized_metrics

ISSUE_SAMPLES = ["7", "07", "+7", "7.", "100", "101", "42", "42"]


def _item(validator=None, references=None, weights=None):
    return Item("test", prompt="p", references=references or [], weights=weights or [], validator=validator)


def test_strict_int_range_accepts_canonical_integers_only(tmp_path):
    strict = parse_validator({"int_range": {"min": 1, "max": 100}}, "t", tmp_path)
    lenient = parse_validator({"int_range": {"min": 1, "max": 100, "lenient": True}}, "t", tmp_path)
    item = _item(strict)
    assert item.validity_mask(ISSUE_SAMPLES).tolist() == [True, False, False, False, True, False, True, True]
    assert _item(lenient).validity_mask(ISSUE_SAMPLES).sum() == 7  # "07", "+7", "7." pass the lenient form
    assert strict("-0") is False and parse_validator({"int_range": {"min": -5, "max": 5}}, "t", tmp_path)(
        "-3"
    )
    with pytest.raises(Exception, match="lenient"):
        parse_validator({"int_range": {"min": 1, "max": 2, "lenient": "yes"}}, "t", tmp_path)


def test_extract_modes(tmp_path):
    states = _item(references=["Ohio", "New York", "York"])
    text = "Sure! I would pick new york, or maybe Ohio."
    assert extract_answer(text, "first_valid", states) == "New York"  # earliest; longest at a tie
    numbers = _item(parse_validator({"int_range": {"min": 13, "max": 22}}, "t", tmp_path))
    assert (
        extract_answer("to find a number between 13 and 22 that is 3.5 or 17.", "first_valid", numbers)
        == "13"
    )
    assert extract_answer("pick 3.5, then 17abc, then 18.", "first_valid", numbers) == "18"
    import re

    assert extract_answer("Answer: 42 (final)", "regex", numbers, re.compile(r"Answer:\s*(\d+)")) == "42"
    assert extract_answer("thinking...\n\n  Ohio  \n", "last_line", states) == "Ohio"
    assert extract_answer("nothing", "first_valid", states) is None


def test_extracted_counts_read_verbose_and_bare_answers_alike():
    states = _item(references=["Ohio", "New York"])
    verbose = ["Sure! New York is lovely.", "I'd say ohio.", "Hmm, I cannot choose.", "OHIO"]
    assert extracted_counts(states, verbose, "first_valid") == {"ohio": 2, "new york": 1, "": 1}
    assert extracted_counts(states, ["New York", "Ohio", "Ohio", "Utah"], "first_valid") == {
        "ohio": 2,
        "new york": 1,
        "": 1,
    }


def test_format_instruction_goes_to_the_last_user_turn():
    chat = [{"role": "system", "content": "s"}, {"role": "user", "content": "Name a state."}]
    assert append_instruction(chat, "Just the name.")[1]["content"] == "Name a state.\n\nJust the name."
    assert chat[1]["content"] == "Name a state."  # not mutated
    assert append_instruction("Name a state.", "Just the name.") == "Name a state.\nJust the name."


def test_task_file_extract_keys(tmp_path):
    (tmp_path / "t.yaml").write_text(
        "name: t\nsplit: heldout\nextract: first_valid\nformat_instruction: Only the state.\n"
        "items:\n  - prompt: [{role: user, content: Name a state.}]\n    references: [Ohio, Utah]\n"
    )
    task = load_task(tmp_path / "t.yaml")
    assert task.extract == "first_valid"
    assert task.items[0].prompt[-1]["content"].endswith("Only the state.")
    (tmp_path / "bad.yaml").write_text(
        "name: t\nsplit: heldout\nextract: guess\nitems:\n  - prompt: p\n    references: [a, b]\n"
    )
    with pytest.raises(Exception, match="extract"):
        load_task(tmp_path / "bad.yaml")


def test_verbalized_parser_by_hand():
    text = 'Here you go:\n1. Ohio :: 0.5\n2. "New York": 30%\n- Texas (0.2)\nno number here\nMaine - 0.05'
    assert parse_verbalized(text) == [("Ohio", 0.5), ("New York", 0.3), ("Texas", 0.2), ("Maine", 0.05)]
    assert parse_verbalized("") == []


def test_verbalized_metrics_by_hand():
    item = _item(references=["Ohio", "Utah"], weights=[0.5, 0.5])
    m = verbalized_metrics([("ohio", 0.6), ("Utah", 0.2), ("Paris", 0.2)], item)
    assert m["vs_n_answers"] == 3 and m["vs_valid_mass"] == pytest.approx(0.8)
    assert m["vs_validity"] == pytest.approx(2 / 3) and m["vs_coverage"] == 1.0
    # stated on the valid set: [0.75, 0.25] vs [0.5, 0.5] -> TV 0.25 (eps smoothing moves it by ~1e-6)
    assert m["tv"] == pytest.approx(0.25, abs=1e-5)
    empty = verbalized_metrics([], item)
    assert empty["vs_n_answers"] == 0 and math.isnan(empty["js"])
    assert np.isnan(empty["vs_valid_mass"])


def test_case_variants_in_a_valid_list_are_one_support_point_for_our_metrics():
    from spectrum_tune.evaluation.sample import sample_metrics

    item = _item(references=["Monday", "MONDAY", "monday", "Tuesday"], weights=[0.25, 0.25, 0.25, 0.25])
    metrics = sample_metrics(item, ["Monday", "monday", "Tuesday", "MONDAY."], n_boot=20, published=True)
    assert metrics["validity"] == 1.0 and metrics["coverage"] == 1.0  # both normalised answers seen
    assert metrics["js"] < 0.01  # samples 3:1 vs target 0.75:0.25 after merging
    assert metrics["percent_valid"] == 0.75 and metrics["coverage_pct"] == 0.75  # exact: "MONDAY." is not
