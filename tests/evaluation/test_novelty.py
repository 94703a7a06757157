"""NoveltyBench equivalence, distinct and utility, offline with tiny models built at test time."""

import pytest
import torch

from spectrum_tune.evaluation.metrics.novelty import (
    PairClassifier,
    RewardModel,
    distinct,
    equivalence_classes,
    rating_from_reward,
    short_answer_equivalent,
    utility,
)


def test_short_answer_rule_matches_the_issue_examples():
    # shared words >= half of the longer answer: all four are one class
    assert equivalence_classes(["New York", "New Jersey", "New Mexico", "York"]) == [0, 0, 0, 0]
    # "ohio." is not "ohio" (punctuation stays in the word); case is ignored
    assert equivalence_classes(["Ohio.", "ohio", "Ohio", "OHIO"]) == [0, 1, 1, 1]
    assert distinct(["Ohio.", "ohio", "Ohio", "OHIO"]) == 2
    assert short_answer_equivalent("a b c d e f", "a") is None  # 6 words: the classifier decides


def test_greedy_partition_compares_with_the_class_representative():
    # "b c" joins class 0 ("a b": 1 shared of 2), "c d" shares nothing with "a b" -> a new class
    assert equivalence_classes(["a b", "b c", "c d"]) == [0, 0, 1]
    long = [
        "one two three four five six",
        "one two three four five six",
        "seven eight nine ten eleven twelve",
    ]
    assert equivalence_classes(long) == [0, 0, 1]  # no classifier: long answers by exact match
    assert distinct(long, k=1) == 1


def test_classifier_callable_and_threshold():
    long = ["w1 w2 w3 w4 w5 w6", "x1 x2 x3 x4 x5 x6", "y1 y2 y3 y4 y5 y6"]
    assert equivalence_classes(long, classifier=lambda a, b: 0.5) == [0, 0, 0]
    assert equivalence_classes(long, classifier=lambda a, b: 0.5, threshold=0.6) == [0, 1, 2]
    assert equivalence_classes(long, classifier=lambda a, b: 0.102) == [0, 1, 2]  # strictly above 0.102


def _tiny_bert(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = [f"w{i}" for i in range(10)] + [f"x{i}" for i in range(10)]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizer(str(vocab))
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=25,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=2,
    )
    model = BertForSequenceClassification(config)
    model.save_pretrained(tmp_path / "clf")
    tokenizer.save_pretrained(tmp_path / "clf")
    return tmp_path / "clf"


def test_pair_classifier_from_a_path_reads_cls_a_sep_b_sep(tmp_path):
    path = _tiny_bert(tmp_path)
    classifier = PairClassifier(str(path))
    a, b = "w1 w2 w3 w4 w5 w6", "x1 x2 x3 x4 x5 x6"
    prob = classifier(a, b)
    tok = classifier.tokenizer
    ids = [
        tok.cls_token_id,
        *tok.encode(a, add_special_tokens=False),
        tok.sep_token_id,
        *tok.encode(b, add_special_tokens=False),
        tok.sep_token_id,
    ]
    types = [0] * 8 + [1] * 7
    with torch.no_grad():
        inputs = {"input_ids": torch.tensor([ids]), "token_type_ids": torch.tensor([types])}
        inputs = {key: value.to(classifier.device) for key, value in inputs.items()}  # CUDA where visible
        logits = classifier.model(**inputs).logits
    assert prob == pytest.approx(float(logits.softmax(-1)[0, 1]), abs=1e-7)
    cut = prob - 1e-6  # just below this pair's probability: equivalent
    assert equivalence_classes([a, b], classifier=str(path), threshold=cut)[1] == 0
    assert equivalence_classes([a, b], classifier=classifier, threshold=prob + 1e-6) == [0, 1]


def test_rating_and_utility_by_hand():
    assert rating_from_reward(-10.0) == 1 and rating_from_reward(-7.71875) == 1  # bisect_left
    assert rating_from_reward(-7.7) == 2 and rating_from_reward(0.0) == 10
    # classes [0, 0, 1]: the repeat earns 0; weights 1, 0.8, 0.64
    assert utility([10, 9, 5], [0, 0, 1]) == pytest.approx((10 + 0 + 0.64 * 5) / 2.44, abs=1e-12)
    assert utility([3], [0], patience=0.5) == 3.0


def test_reward_model_from_a_path(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForSequenceClassification(config).save_pretrained(tmp_path / "rm")
    tokenizer.save_pretrained(tmp_path / "rm")
    rm = RewardModel(str(tmp_path / "rm"))
    rewards = rm.rewards("Name a colour.", ["red", "blue"])
    assert len(rewards) == 2 and rewards[0] != rewards[1]
    assert rm.ratings("Name a colour.", ["red"]) == [rating_from_reward(rewards[0])]


def test_free_text_metrics_use_the_equivalence_and_the_reward_model():
    from spectrum_tune.evaluation.sample import sample_metrics
    from spectrum_tune.evaluation.tasks import Item

    class FixedRewards:
        def ratings(self, prompt, responses):
            assert prompt == "Tell a story."
            return [7] * len(responses)

    stories = ["A long story about a girl\nand her dog.", "A long story about a girl\nand her cat."]
    texts = ["Ohio", "ohio", *stories]
    item = Item("x", prompt=[{"role": "user", "content": "Tell a story."}])
    metrics = sample_metrics(item, texts, judges={"reward_model": FixedRewards()})
    # "Ohio" ~ "ohio" (word rule); the stories differ in their second line, compared whole
    assert metrics["distinct_k"] == 3 and metrics["raw_unique_pct"] == 1.0
    assert metrics["utility_k"] == pytest.approx((7 + 0 + 0.64 * 7 + 0.512 * 7) / (1 + 0.8 + 0.64 + 0.512))
    assert metrics["intdiv"] == pytest.approx(metrics["embedding_diversity"] * 3 / 4)
