"""Score mode and in-context NLL on the random toy model: exact agreement with direct forwards."""

import numpy as np
import pytest
import torch
from trl.trainer.utils import add_fused_lm_head

from spectrum_tune.evaluation.metrics import score_distribution_match
from spectrum_tune.evaluation.score import group_logprobs, score_item, score_task, tokenize_for_scoring
from spectrum_tune.evaluation.steer import heldout_group, steer_task
from spectrum_tune.evaluation.tasks import Item, Task
from spectrum_tune.training.collator import SpectrumCollator
from spectrum_tune.training.data import incontext_messages
from spectrum_tune.training.scoring import score_chunk as _score_chunk
from spectrum_tune.training.tokenize import render_incontext, tokenize_group

from ..toy import toy_model

CHAT = [{"role": "user", "content": "Pick a number between 1 and 10."}]


def _item(prompt=CHAT, references=("1", "10", "2", "red"), weights=None):
    references = list(references)
    weights = weights or [1 / len(references)] * len(references)
    return Item("test", prompt=prompt, references=references, weights=weights)


def _direct_logprobs(model, group):
    """Reference: one unpadded forward per sequence, log_softmax, sum over scored tokens."""
    values = []
    for ids, mask in zip(group["completion_ids"], group["completion_mask"], strict=True):
        full = torch.tensor([group["prompt_ids"] + ids])
        with torch.no_grad():
            logps = model(full).logits[0, :-1].double().log_softmax(-1)
        start = len(group["prompt_ids"])
        token_logps = logps[start - 1 : start - 1 + len(ids)].gather(-1, torch.tensor(ids)[:, None])[:, 0]
        values.append(float((token_logps * torch.tensor(mask)).sum()))
    return np.array(values)


@pytest.mark.parametrize("prompt", [CHAT, "Pick a number between 1 and 10. Answer:"])
def test_score_equals_direct_forward(model, tokenizer, prompt):
    item = _item(prompt)
    group = tokenize_for_scoring(item, tokenizer)
    assert group == tokenize_group(item.row, tokenizer, None)  # same tokens as training
    assert all(ids[-1] == tokenizer.eos_token_id for ids in group["completion_ids"])
    (harness,) = group_logprobs(model, [group], tokenizer.pad_token_id)
    np.testing.assert_allclose(np.exp(harness), np.exp(_direct_logprobs(model, group)), rtol=1e-5)


def test_score_equals_trainer_fused_head_path(tokenizer):
    model = toy_model(tokenizer, seed=1).eval()
    add_fused_lm_head(model)  # the trainer's scoring path; the plain forward stays unchanged
    groups = [
        tokenize_for_scoring(_item(), tokenizer),
        tokenize_for_scoring(_item(references=("red",)), tokenizer),
    ]
    batch = SpectrumCollator(tokenizer.pad_token_id)(groups)
    with torch.no_grad():
        trainer_logps = _score_chunk(
            model,
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            labels=batch["labels"],
            use_cache=False,
        )[0]
    harness = np.concatenate(group_logprobs(model, groups, tokenizer.pad_token_id))
    np.testing.assert_allclose(np.exp(harness), np.exp(trainer_logps.double().numpy()), rtol=1e-5)


def test_batch_size_does_not_change_scores(model, tokenizer):
    groups = [
        tokenize_for_scoring(_item(), tokenizer),
        tokenize_for_scoring(_item(prompt="Name a color."), tokenizer),
    ]
    one = group_logprobs(model, groups, tokenizer.pad_token_id, batch_size=1)
    many = group_logprobs(model, groups, tokenizer.pad_token_id, batch_size=64)
    three = group_logprobs(model, groups, tokenizer.pad_token_id, batch_size=3)
    for a, b, c in zip(one, many, three, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5)
        np.testing.assert_allclose(a, c, rtol=1e-5)


def test_published_eot_drops_the_end_of_turn_token(model, tokenizer):
    item = _item(references=("1", "10"))
    full_group = tokenize_for_scoring(item, tokenizer)
    published_group = tokenize_for_scoring(item, tokenizer, published_eot=True)
    assert [m[-1] for m in published_group["completion_mask"]] == [0, 0]
    (full,) = group_logprobs(model, [full_group], tokenizer.pad_token_id)
    (published,) = group_logprobs(model, [published_group], tokenizer.pad_token_id)
    # the difference is exactly log p(end-of-turn | prompt, reference)
    for k, ids in enumerate(full_group["completion_ids"]):
        prefix = torch.tensor([full_group["prompt_ids"] + ids[:-1]])
        with torch.no_grad():
            eot = model(prefix).logits[0, -1].double().log_softmax(-1)[tokenizer.eos_token_id]
        assert full[k] == pytest.approx(published[k] + float(eot), abs=1e-5)
    # "10" is the tokens "1", "0": without the end-of-turn, "1" also claims the mass of "10"
    assert (
        tokenizer("10", add_special_tokens=False)["input_ids"][0]
        == tokenizer("1", add_special_tokens=False)["input_ids"][0]
    )
    assert np.exp(published[0]) >= np.exp(full[0]) + np.exp(published[1]) - 1e-7


def test_score_item_metrics():
    s = np.log([0.2, 0.1, 0.05])
    item = _item(references=("a", "b", "c"), weights=[0.5, 0.3, 0.2])
    metrics = score_item(item, s)
    assert metrics["valid_mass"] == pytest.approx(0.35)
    for key, value in score_distribution_match(s, item.weights).items():
        assert metrics[key] == pytest.approx(value)
    q = np.array([4, 2, 1]) / 7
    assert metrics["entropy"] == pytest.approx(-(q * np.log(q)).sum() / np.log(3))
    closed = score_item(_item(references=("a",)), np.log([0.25]))
    assert closed["answer_prob"] == pytest.approx(0.25)
    assert closed["answer_logprob"] == pytest.approx(np.log(0.25))
    assert "js" not in closed


def test_score_task_skips_items_without_references(model, tokenizer):
    items = [_item(), Item("x", prompt="Write a sentence."), _item(references=("red",))]
    task = Task("t", "s", "heldout", "open", None, items)
    records = score_task(model, tokenizer, task)
    assert records[1] is None
    assert len(records[0]["logprobs"]) == 4 and sum(records[0]["q"]) == pytest.approx(1.0)
    assert set(records[2]["metrics"]) == {"valid_mass", "answer_prob", "answer_logprob"}


# ---- in-context steerability -------------------------------------------------------------


def test_heldout_group_scores_only_the_last_output(tokenizer):
    messages = incontext_messages(["red", "blue", "red", "green"], "Names of colors.")
    group = heldout_group(messages, tokenizer)
    rendered = render_incontext(messages, tokenizer, max_length=None)
    mask = rendered["completion_mask"][0]
    ids = rendered["completion_ids"][0]
    # the trainer's renderer scores every output; its last scored run is the held-out output
    last_start = max(i for i in range(len(mask)) if mask[i] and (i == 0 or not mask[i - 1]))
    last_end = len(mask) - mask[::-1].index(1)
    assert group["completion_ids"][0] == ids[last_start:last_end]
    assert group["prompt_ids"] == rendered["prompt_ids"] + ids[:last_start]
    assert tokenizer.decode(group["completion_ids"][0]) == "green<|im_end|>"


def test_heldout_group_without_description_or_examples(tokenizer):
    group = heldout_group(incontext_messages(["red"]), tokenizer)
    assert tokenizer.decode(group["completion_ids"][0]) == "red<|im_end|>"
    assert tokenizer.decode(group["prompt_ids"]) == "<|im_start|>output\n"
    # an output equal to the role name must not be found in the header
    group = heldout_group(incontext_messages(["output"]), tokenizer)
    assert tokenizer.decode(group["completion_ids"][0]) == "output<|im_end|>"


def test_steer_task_reports_mean_nll_per_k(model, tokenizer):
    item = Item(
        "x",
        description="Names of colors.",
        examples=["red", "blue", "red", "red"],
        heldout=["red", "blue"],
        k=[0, 1, 4],
    )
    task = Task("steer", "steer", "heldout", "steer", None, [item])
    (record,) = steer_task(model, tokenizer, task)
    assert set(record["metrics"]) == {"incontext_nll@0", "incontext_nll@1", "incontext_nll@4"}
    group = heldout_group(incontext_messages(["red", "blue"], "Names of colors."), tokenizer)
    expected = -_direct_logprobs(model, group)[0]
    assert record["nll"]["1"][1] == pytest.approx(expected, abs=1e-4)
    assert record["metrics"]["incontext_nll@1"] == pytest.approx(np.mean(record["nll"]["1"]))
