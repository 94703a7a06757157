"""Reward functions against hand-computed values, called the way GRPOTrainer calls them."""

from __future__ import annotations

import json
import math

import pytest

from spectrum_tune.errors import SpectrumError
from spectrum_tune.rl.rewards import (
    distribution_reward,
    diversity_reward,
    group_diversity,
    popularity_reward,
    validity_reward,
)

CHAT = [{"role": "user", "content": "Pick a number between 1 and 3."}]


def turn(text: str) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": text}]


def test_validity_reads_references_validator_and_answer():
    rewards = validity_reward(
        prompts=["p1", "p1", "p2", "p2", "p3", "p4", "p5"],
        completions=["ohio.", "Maine", "3", "7", "PARIS", "x", "4"],
        references=[["Ohio", "Texas"], ["Ohio", "Texas"], None, None, None, None, None],
        validator=[
            None,
            None,
            {"int_range": {"min": 1, "max": 6}},
            '{"int_range": {"min": 1, "max": 6}}',
            None,
            None,
            {"regex": "[0-9]+", "int_range": None},
        ],
        answer=[None, None, None, None, "Paris", None, None],
        trainer_state=None,  # TRL's extra keyword arguments are ignored
    )
    assert rewards == [1.0, 0.0, 1.0, 0.0, 1.0, None, 1.0]


def test_validity_conversational_completions():
    rewards = validity_reward(
        prompts=[CHAT] * 2, completions=[turn("2"), turn("two")], references=[["1", "2", "3"]] * 2
    )
    assert rewards == [1.0, 0.0]


def test_group_diversity_hand_computed():
    # G = 4, class sizes 2, 2, 1, 1: d = (G - n) / (G - 1)
    assert group_diversity(["a", "a", "b", "c"]) == pytest.approx([2 / 3, 2 / 3, 1.0, 1.0])
    assert group_diversity(["a", "a"]) == [0.0, 0.0]
    assert group_diversity(["a"]) == [1.0]


def test_diversity_reward_groups_by_position_and_multiplies_quality():
    # three groups of G = 3 in TRL's order; the first two rows share their prompt text
    prompts = ["P", "P", "P", "P", "P", "P", "Q", "Q", "Q"]
    completions = ["1", "1", "2", "1", "2", "3", "5", "5", "4"]
    references = [["1", "2", "3"]] * 3 + [["1", "2"]] * 3 + [["4"]] * 3
    rewards = diversity_reward(
        prompts=prompts, completions=completions, references=references, num_generations=3
    )
    # group 1: classes 1, 1, 2 -> d = 1/2, 1/2, 1, all valid; group 2: all distinct, "3" invalid for
    # its own references; group 3: 5, 5 invalid -> quality 0, "4" valid and unique
    assert rewards == pytest.approx([0.5, 0.5, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0])


def test_group_rewards_refuse_when_they_cannot_tell_the_groups():
    with pytest.raises(SpectrumError, match="diversity_reward scores GRPO groups and cannot tell them"):
        diversity_reward(prompts=["p"] * 2, completions=["a", "b"])
    with pytest.raises(SpectrumError, match="has 3 completions, not whole groups of num_generations=2"):
        distribution_reward(
            prompts=["p"] * 3, completions=["a"] * 3, references=[["a"]] * 3, num_generations=2
        )
    with pytest.raises(SpectrumError, match="completions 0-1 of the generation batch do not share one"):
        popularity_reward()(prompts=["p", "q"], completions=["a", "b"], num_generations=2)
    with pytest.raises(SpectrumError, match="num_generations must be a positive int"):
        diversity_reward(prompts=["p"], completions=["a"], num_generations=0)


def test_diversity_factory_with_callable_equivalence_and_no_quality():
    reward = diversity_reward(quality=None, equivalence=lambda texts: [len(t) for t in texts])
    assert reward.__name__ == "diversity_reward"
    assert reward(
        prompts=[CHAT] * 3, completions=[turn("aa"), turn("bb"), turn("c")], num_generations=3
    ) == pytest.approx([0.5, 0.5, 1.0])


def test_diversity_factory_with_a_quality_function():
    reward = diversity_reward(quality=lambda prompts, completions, **kw: [0.5, 1.0, None])
    # classes a, a, b -> d = 1/2, 1/2, 1; a None quality counts as 1
    assert reward(prompts=["p"] * 3, completions=["a", "a", "b"], num_generations=3) == pytest.approx(
        [0.25, 0.5, 1.0]
    )


def test_named_equivalence_missing_is_one_line_error(monkeypatch):
    from spectrum_tune.rl import equivalence

    monkeypatch.setitem(equivalence.EQUIVALENCES, "novelty", "spectrum_tune.no_such_module:classes")
    with pytest.raises(SpectrumError, match="equivalence 'novelty' needs"):
        diversity_reward(equivalence="novelty")


def test_novelty_equivalence_is_noveltybench_rule():
    """equivalence="novelty" is the eval's NoveltyBench short-answer rule: "New York", "New Jersey",
    "New Mexico" and "York" are one class; "Ohio." differs from "ohio" / "Ohio" / "OHIO"."""
    reward = diversity_reward(equivalence="novelty")
    texts = ["New York", "New Jersey", "New Mexico", "York"]
    assert reward(prompts=["p"] * 4, completions=texts, num_generations=4) == pytest.approx([0.0] * 4)
    # classes of sizes 1 and 3 in a group of 4: d = (4 - 1) / 3 and (4 - 3) / 3
    assert reward(prompts=["p"] * 4, completions=["Ohio.", "ohio", "Ohio", "OHIO"], num_generations=4) == (
        pytest.approx([1.0, 1 / 3, 1 / 3, 1 / 3])
    )


def _js_hand(p, q):
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    kl = lambda x: sum(a * math.log(a / c) for a, c in zip(x, m, strict=True) if a > 0)  # noqa: E731
    return 0.5 * kl(p) + 0.5 * kl(q)


def test_distribution_reward_leave_one_out_js_hand_computed():
    # bins a, b, invalid; target (0.5, 0.5, 0); group a, a, b, x -> counts (2, 1, 1)
    full = 0.375 * math.log(4 / 3)  # JS((.5,.25,.25), (.5,.5,0)), derived by hand
    assert _js_hand([0.5, 0.25, 0.25], [0.5, 0.5, 0]) == pytest.approx(full)
    without_a = 0.5 * (2 / 3 * math.log(4 / 5) + 1 / 3 * math.log(2) + math.log(6 / 5))
    without_b = 0.5 * (
        2 / 3 * math.log(8 / 7) + 1 / 3 * math.log(2) + 0.5 * math.log(6 / 7) + 0.5 * math.log(2)
    )
    without_x = 0.5 * (
        2 / 3 * math.log(8 / 7) + 1 / 3 * math.log(4 / 5) + 0.5 * math.log(6 / 7) + 0.5 * math.log(6 / 5)
    )
    rewards = distribution_reward(
        prompts=["p"] * 4,
        completions=["a", "A.", "b", "x"],
        references=[["a", "b"]] * 4,
        weights=[[0.5, 0.5]] * 4,
        num_generations=4,
    )
    expected = [4 * (without_a - full)] * 2 + [4 * (without_b - full), 4 * (without_x - full)]
    assert rewards == pytest.approx(expected, abs=1e-9)
    assert rewards[3] < 0 < rewards[2]  # the invalid answer moves away, the missing one toward


def test_distribution_reward_single_completion_and_uniform_default():
    # G = 1: the empty distribution counts as JS = ln 2
    rewards = distribution_reward(
        prompts=["p"], completions=["a"], references=[["a", "b"]], num_generations=1
    )
    assert rewards == pytest.approx([math.log(2) - 0.75 * math.log(4 / 3)])


def test_distribution_reward_rows_without_references_get_none():
    assert distribution_reward(prompts=["p", "p"], completions=["a", "b"], num_generations=2) == [None, None]


def test_popularity_reward_hand_computed():
    reward = popularity_reward(margin=0.2)
    rewards = reward(
        prompts=["p"] * 4, completions=["1", "1", "2", "x"], references=[["1", "2"]] * 4, num_generations=4
    )
    assert rewards == pytest.approx([0.9, 0.9, 0.85, 0.0])


def test_bad_validator_cell_is_one_line_error():
    with pytest.raises(SpectrumError, match="validator"):
        validity_reward(prompts=["p"], completions=["1"], validator=[json.dumps({"int_range": {"min": 3}})])


@pytest.mark.parametrize(
    ("labels", "threshold", "expected"),
    [(1, 0.5, [0, 0, 0]), (1, 0.6, [0, 1, 2]), (2, 0.5, [0, 0, 0]), (2, 0.6, [0, 1, 2])],
)
def test_classifier_equivalence_partitions_by_pair_probability(
    tiny_model_dir, tmp_path, labels, threshold, expected
):
    """A pair classifier whose score head is zero says p = 0.5 for every pair (sigmoid(0), or softmax
    of two zeros): at threshold 0.5 every text joins the first class, at 0.6 each starts its own."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    from spectrum_tune.rl.equivalence import classifier_equivalence

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_labels=labels,
        pad_token_id=tokenizer.pad_token_id,
    )
    if labels == 2:
        config.label2id, config.id2label = (
            {"different": 0, "equivalent": 1},
            {0: "different", 1: "equivalent"},
        )
    model = LlamaForSequenceClassification(config)
    with torch.no_grad():
        model.score.weight.zero_()
    model.save_pretrained(tmp_path / "classifier")
    tokenizer.save_pretrained(tmp_path / "classifier")
    classes = classifier_equivalence(str(tmp_path / "classifier"), threshold=threshold)
    assert classes(["red", "blue", "green"]) == expected
    reward = diversity_reward(quality=None, equivalence=str(tmp_path / "classifier"))
    assert len(reward(prompts=["p"] * 2, completions=["a", "b"], num_generations=2)) == 2
