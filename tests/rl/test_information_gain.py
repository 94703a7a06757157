"""RLP's information-gain reward: exact against hand-computed log-probs, the EMA / frozen baseline,
plain-text rows, and `spectrum-tune grpo` on a .txt file through trl.GRPOTrainer unchanged."""

import json
import math

import pytest
import torch

from spectrum_tune.errors import SpectrumError
from spectrum_tune.rl.information_gain import InformationGainReward, text_rows

from ..toy import save_toy, toy_model, toy_tokenizer

PROMPTS = ["Name a color", "Pick number between 1 and", "red green"]
THOUGHTS = [" blue", " 7 8", ""]
CONTINUATIONS = [" red . 2", " 10", " yellow"]


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


def _direct_logprob(model, ids, first):
    """log p of ids[first:] given ids[:first], one unpadded forward, summed token by token."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    total = 0.0
    for position in range(first, len(ids)):
        total += float(torch.log_softmax(logits[position - 1].double(), -1)[ids[position]])
    return total


def _perturbed(model, seed=1):
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def test_reward_matches_hand_computed_logprobs(tokenizer):
    policy = toy_model(tokenizer)
    reward = InformationGainReward(policy, tokenizer, baseline="frozen", thought_suffix=" .")
    baseline = toy_model(tokenizer)  # the frozen copy = the starting weights
    _perturbed(policy)  # the policy moves; the baseline must not
    thought_ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in THOUGHTS]
    eos = tokenizer.eos_token_id
    given_ids = [[*ids, eos] for ids in thought_ids]  # a finished thought ends with EOS: not scored
    rewards = reward(PROMPTS, THOUGHTS, completion_ids=given_ids, continuation=CONTINUATIONS)
    suffix = tokenizer(" .", add_special_tokens=False)["input_ids"]
    for prompt, thought, continuation, got in zip(PROMPTS, thought_ids, CONTINUATIONS, rewards, strict=True):
        context = tokenizer(prompt)["input_ids"]
        target = tokenizer(continuation, add_special_tokens=False)["input_ids"]
        with_thought = context + thought + suffix
        expected = _direct_logprob(policy, with_thought + target, len(with_thought)) - _direct_logprob(
            baseline, context + target, len(context)
        )
        assert got == pytest.approx(expected, abs=1e-5)
    assert len({round(r, 6) for r in rewards}) == 3  # a real, row-dependent signal
    # mean: per continuation token
    mean = InformationGainReward(policy, tokenizer, baseline="frozen", reduction="mean", thought_suffix=" .")
    mean.baseline = reward.baseline
    per_token = mean(PROMPTS, THOUGHTS, completion_ids=given_ids, continuation=CONTINUATIONS)
    lengths = [len(tokenizer(c, add_special_tokens=False)["input_ids"]) for c in CONTINUATIONS]
    assert per_token == pytest.approx([r / n for r, n in zip(rewards, lengths, strict=True)], abs=1e-6)


def test_identical_policy_and_baseline_give_zero_without_a_thought(tokenizer):
    reward = InformationGainReward(toy_model(tokenizer), tokenizer)
    rewards = reward(PROMPTS, [""] * 3, continuation=CONTINUATIONS)  # text completions, no ids
    assert rewards == pytest.approx([0.0] * 3, abs=1e-5)


def test_missing_continuation_column_model_and_rows(tokenizer):
    with pytest.raises(SpectrumError, match="no model"):
        InformationGainReward()(PROMPTS, THOUGHTS, continuation=CONTINUATIONS)
    reward = InformationGainReward(toy_model(tokenizer), tokenizer)
    with pytest.raises(SpectrumError, match="dataset column 'continuation'"):
        reward(PROMPTS, THOUGHTS)
    got = reward(PROMPTS[:2], THOUGHTS[:2], continuation=[None, " 10"])
    assert got[0] is None and math.isfinite(got[1])
    with pytest.raises(SpectrumError, match="baseline must be one of"):
        InformationGainReward(baseline="none")


def test_ema_callback_moves_the_baseline_and_frozen_does_not(tokenizer):
    for kind, decay in (("ema", 0.75), ("frozen", 0.75)):
        policy = toy_model(tokenizer)
        reward = InformationGainReward(baseline=kind, ema_decay=decay)
        callback = reward.callback
        callback.on_train_begin(None, None, None, model=policy, processing_class=tokenizer)
        start = [p.detach().clone() for p in reward.baseline.parameters()]
        _perturbed(policy)
        callback.on_step_end(None, None, None, model=policy)
        for before, ema, live in zip(start, reward.baseline.parameters(), policy.parameters(), strict=True):
            expected = decay * before + (1 - decay) * live.detach() if kind == "ema" else before
            assert torch.allclose(ema, expected, atol=1e-7)
            assert not ema.requires_grad


def test_text_rows_split_documents(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text("a b c d e f g h\n\none two three four five\n\nshort\n")
    assert text_rows(path, context_words=3, continuation_words=2) == [
        {"prompt": "a b c", "continuation": " d e"},
        {"prompt": "one two three", "continuation": " four five"},
    ]
    assert len(text_rows(path, 3, 2, stride=1)) == 4 + 1
    with pytest.raises(SpectrumError, match="no document has"):
        text_rows(["x y"], 3, 2)


def test_grpo_cli_trains_rlp_on_plain_text(tmp_path):
    from spectrum_tune.cli import main

    toy = save_toy(tmp_path / "toy")
    text = tmp_path / "text.txt"
    text.write_text("\n\n".join("red green blue yellow 1 2 3 4 5 6 7 8 9 10" for _ in range(8)) + "\n")
    out = tmp_path / "run"
    argv = [
        "grpo",
        "--config",
        "recipes/tiny-rlp.yaml",
        "--model_name_or_path",
        str(toy),
        "--dataset_name",
        str(text),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--rlp_context_words",
        "6",
        "--rlp_continuation_words",
        "3",
        "--rlp_ema_decay",
        "0.5",
        "--per_device_train_batch_size",
        "4",
        "--num_generations",
        "4",
        "--max_completion_length",
        "4",
    ]
    assert main(argv) == 0
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["global_steps"] == 2 and summary["reward_funcs"] == ["information_gain"]
    assert summary["first_logged_reward"] is not None
