"""Score mode takes log-probs in float32 from the final hidden states, whatever the checkpoint dtype."""

from __future__ import annotations

import pytest
import torch

from spectrum_tune.evaluation.score import group_logprobs
from spectrum_tune.training.tokenize import tokenize_group

from ..families.builders import BY_NAME, build_model, build_tokenizer
from ..toy import toy_model, toy_tokenizer

ROWS = [
    {"prompt": [{"role": "user", "content": "Name a color."}], "references": ["red", "green blue"]},
    {
        "prompt": [{"role": "user", "content": "Pick a number between 1 and 3."}],
        "references": ["1", "2", "3"],
    },
]


def _groups(tokenizer):
    return [
        tokenize_group(
            {**row, "weights": [1 / len(row["references"])] * len(row["references"])}, tokenizer, None
        )
        for row in ROWS
    ]


def _reference_logps(model, groups, head_dtype):
    """Each reference scored as one full sequence, the head on the final hidden state in ``head_dtype``."""
    out = []
    for group in groups:
        values = []
        for completion in group["completion_ids"]:
            ids = torch.tensor([group["prompt_ids"] + completion])
            hidden = model.model(input_ids=ids).last_hidden_state[0, :-1]
            weight = model.lm_head.weight
            logits = hidden.to(head_dtype) @ weight.to(head_dtype).T
            logps = logits.float().log_softmax(-1)
            targets = ids[0, 1:][-len(completion) :]
            values.append(logps[-len(completion) :].gather(-1, targets[:, None]).sum().item())
        out.append(values)
    return out


@pytest.mark.parametrize("prefix_sharing", [True, False])
def test_bf16_checkpoint_scores_with_a_float32_head(prefix_sharing):
    torch.manual_seed(0)
    tokenizer = toy_tokenizer()
    model = toy_model(tokenizer)
    with torch.no_grad():  # logits near 25, where bf16 rounds them by ~0.1
        model.lm_head.weight.mul_(60.0)
    model = model.to(torch.bfloat16).eval()
    groups = _groups(tokenizer)
    with torch.no_grad():
        exact = _reference_logps(model, groups, torch.float32)
        rounded = _reference_logps(model, groups, torch.bfloat16)
        scored = group_logprobs(model, groups, tokenizer.pad_token_id, prefix_sharing=prefix_sharing)
    for got, want, bf16 in zip(scored, exact, rounded, strict=True):
        # the check can fail: bf16 logits give visibly different log-probs
        assert max(abs(a - b) for a, b in zip(want, bf16, strict=True)) > 1e-2
        # measured: 0 with prefix sharing, 1.5e-5 without (summation order), vs 0.17 nats for bf16 logits
        torch.testing.assert_close(
            torch.tensor(got), torch.tensor(want, dtype=torch.float64), rtol=0, atol=1e-4
        )


@pytest.mark.parametrize("name", ["gemma2", "cohere2"])
def test_softcapping_and_logit_scale_are_applied_as_the_model_does(name):
    family = BY_NAME[name]
    tokenizer = build_tokenizer(family)
    model = build_model(family, tokenizer).eval()
    groups = _groups(tokenizer)
    with torch.no_grad():
        scored = group_logprobs(model, groups, tokenizer.pad_token_id, prefix_sharing=False)
        for group, values in zip(groups, scored, strict=True):
            for completion, value in zip(group["completion_ids"], values, strict=True):
                ids = torch.tensor([group["prompt_ids"] + completion])
                logps = model(input_ids=ids).logits[0, :-1].float().log_softmax(-1)[-len(completion) :]
                want = logps.gather(-1, ids[0, 1:][-len(completion) :, None]).sum().item()
                assert value == pytest.approx(want, abs=1e-5)
