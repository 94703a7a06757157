"""GEM (spectrum_tune.training.gem) against direct computations, its limit cases, the chunked LM-head
version, and the trainer's `spectrum_loss_type="gem"` path on the toy model."""

import math

import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset

from spectrum_tune import SpectrumConfig, SpectrumTrainer
from spectrum_tune.training.gem import chunked_gem_loss, gem_token_loss
from spectrum_tune.training.losses import sequence_logps, spectrum_loss_per_group

from ..toy import toy_model, toy_tokenizer

H_CHOICES = ["linear", "logsigmoid"]


def _random(n=13, v=29, seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    logits = (3 * torch.randn(n, v, generator=generator, dtype=dtype)).requires_grad_()
    labels = torch.randint(0, v, (n,), generator=generator)
    return logits, labels


def _reference_code_loss(logits, labels, beta, h):
    """GEM's reference ``gem_loss`` (liziniu/GEM, sft_trainer.py) line for line: shift, drop
    ``-100``, token mean. Inputs are ``[B, T, V]`` logits and unshifted ``[B, T]`` labels."""
    shift_logits, shift_labels = logits[..., :-1, :], labels[..., 1:]
    mask = shift_labels != -100
    shift_logits, shift_labels = shift_logits[mask], shift_labels[mask]
    with torch.no_grad():
        logits_on_labels = torch.gather(shift_logits, dim=-1, index=shift_labels.unsqueeze(-1)).squeeze(-1)
        logits_diff = shift_logits - logits_on_labels.unsqueeze(-1)
        weights = torch.ones_like(logits_diff) if h == "linear" else torch.sigmoid(0.01 * logits_diff)
    gene_log_probs = F.log_softmax(shift_logits, dim=-1)
    q_probs = torch.exp(F.log_softmax(shift_logits / beta, dim=-1)).detach()
    real_log_probs = torch.gather(gene_log_probs, dim=-1, index=shift_labels.unsqueeze(-1))
    return -torch.sum(q_probs * weights * (real_log_probs - gene_log_probs), dim=-1).mean()


# -- the loss ---------------------------------------------------------------------------------


@pytest.mark.parametrize("h", H_CHOICES)
@pytest.mark.parametrize("beta", [0.6, 0.9])
def test_token_loss_is_the_reference_code_mean(h, beta):
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 6, 17, generator=generator, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 17, (3, 6), generator=generator)
    labels[0, :3] = -100
    labels[2, 4] = -100
    expected = _reference_code_loss(logits, labels, beta, h)
    (expected_grad,) = torch.autograd.grad(expected, logits)
    per_token = gem_token_loss(logits[:, :-1], labels[:, 1:], beta, h)
    ours = per_token.sum() / (labels[:, 1:] != -100).sum()
    (grad,) = torch.autograd.grad(ours, logits)
    torch.testing.assert_close(ours, expected)
    torch.testing.assert_close(grad, expected_grad)
    assert (per_token[labels[:, 1:] == -100] == 0).all()


@pytest.mark.parametrize("h", H_CHOICES)
def test_gradient_is_weighted_q_minus_onehot(h):
    # q and w carry no gradient, so d loss / dz = q * w - (sum_v q_v w_v) onehot(y): derived by
    # hand here, independent of autograd through the reference form.
    beta = 0.7
    logits, labels = _random()
    (grad,) = torch.autograd.grad(gem_token_loss(logits, labels, beta, h).sum(), logits)
    z = logits.detach()
    q = torch.softmax(z / beta, -1)
    w = torch.ones_like(z) if h == "linear" else torch.sigmoid(0.01 * (z - z.gather(-1, labels[:, None])))
    expected = q * w - (q * w).sum(-1, keepdim=True) * F.one_hot(labels, z.size(-1))
    torch.testing.assert_close(grad, expected)


def test_beta_one_linear_is_cross_entropy_gradient_and_ce_minus_entropy():
    logits, labels = _random(seed=2)
    loss = gem_token_loss(logits, labels, beta=1.0, h="linear")
    ce = F.cross_entropy(logits, labels, reduction="none")
    p = torch.softmax(logits, -1)
    entropy = -(p * torch.log_softmax(logits, -1)).sum(-1)
    torch.testing.assert_close(loss, ce - entropy)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    (ce_grad,) = torch.autograd.grad(ce.sum(), logits)
    torch.testing.assert_close(grad, ce_grad)


def test_small_beta_linear_tends_to_the_argmax_margin():
    # beta -> 0: q -> onehot(argmax z), so loss -> max z - z_y and grad -> onehot(argmax) - onehot(y)
    logits, labels = _random(seed=3)
    z = logits.detach()
    z = z + F.one_hot(z.argmax(-1), z.size(-1))  # a clear winner per row: no near-ties
    logits = z.clone().requires_grad_()
    loss = gem_token_loss(logits, labels, beta=1e-2, h="linear")
    torch.testing.assert_close(loss, z.amax(-1) - z.gather(-1, labels[:, None])[:, 0], atol=1e-4, rtol=0)
    (grad,) = torch.autograd.grad(loss.sum(), logits)
    expected = F.one_hot(z.argmax(-1), z.size(-1)) - F.one_hot(labels, z.size(-1))
    torch.testing.assert_close(grad, expected.double(), atol=1e-4, rtol=0)


def test_bad_arguments_are_refused(tmp_path):
    logits, labels = _random()
    with pytest.raises(ValueError, match="beta"):
        gem_token_loss(logits, labels, beta=0.0)
    with pytest.raises(ValueError, match="h must be"):
        chunked_gem_loss(torch.zeros(2, 3), torch.zeros(5, 3), torch.zeros(2, dtype=torch.long), h="relu")
    for field, value in (("spectrum_loss_type", "kl"), ("gem_beta", 1.5), ("gem_beta", 0.0), ("gem_h", "x")):
        with pytest.raises(ValueError, match=field):
            SpectrumConfig(output_dir=str(tmp_path), report_to=[], **{field: value})


# -- the chunked LM-head version --------------------------------------------------------------


@pytest.mark.parametrize("h", H_CHOICES)
@pytest.mark.parametrize("chunk_size", [1, 4, None])
def test_chunked_equals_full_logits_values_and_gradients(h, chunk_size):
    generator = torch.Generator().manual_seed(4)
    n, dim, vocab, beta = 11, 8, 23, 0.7
    hidden = torch.randn(n, dim, generator=generator, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(vocab, dim, generator=generator, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(vocab, generator=generator, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, vocab, (n,), generator=generator)
    upstream = torch.randn(n, generator=generator, dtype=torch.float64)  # per-token dL/dloss

    logits = hidden @ weight.t() + bias
    full = gem_token_loss(logits, labels, beta, h)
    expected_grads = torch.autograd.grad((full * upstream).sum(), (hidden, weight, bias))
    out = chunked_gem_loss(hidden, weight, labels, bias, beta, h, chunk_size=chunk_size, with_stats=True)
    grads = torch.autograd.grad((out.loss * upstream).sum(), (hidden, weight, bias))

    torch.testing.assert_close(out.loss, full)
    for name, grad, expected in zip(("hidden", "weight", "bias"), grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected, msg=name)
    z = logits.detach()
    log_p = torch.log_softmax(z, -1)
    torch.testing.assert_close(out.entropy, -(log_p.exp() * log_p).sum(-1))
    torch.testing.assert_close(out.log_prob, log_p.gather(-1, labels[:, None])[:, 0])
    assert out.is_top1.tolist() == (z.argmax(-1) == labels).tolist()


def test_chunked_without_bias_frozen_head_and_bf16_autocast():
    generator = torch.Generator().manual_seed(5)
    hidden = torch.randn(9, 8, generator=generator, requires_grad=True)
    weight = torch.randn(31, 8, generator=generator)  # frozen, as under LoRA: no weight gradient is built
    labels = torch.randint(0, 31, (9,), generator=generator)
    full = gem_token_loss(hidden @ weight.t(), labels, 0.8)
    (expected,) = torch.autograd.grad(full.sum(), hidden)
    loss = chunked_gem_loss(hidden, weight, labels, beta=0.8, chunk_size=2)
    (grad,) = torch.autograd.grad(loss.sum(), hidden)
    torch.testing.assert_close(loss, full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad, expected, rtol=1e-5, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = chunked_gem_loss(hidden, weight, labels, beta=0.8, chunk_size=2)
    assert low.dtype == torch.float32  # bf16 projection, float32 GEM arithmetic
    torch.testing.assert_close(low, full, rtol=0.05, atol=0.05)


# -- the trainer ------------------------------------------------------------------------------


def _chat(text):
    return [{"role": "user", "content": text}]


MIXED = [
    {"prompt": _chat("Name a color."), "references": ["red", "green", "blue"], "weights": [0.5, 0.3, 0.2]},
    {"prompt": _chat("Pick a number between 4 and 5."), "references": ["5"]},
    {"prompt": _chat("Pick a number between 1 and 3."), "references": ["1", "2"]},
    {"prompt": _chat("Name a color, please, between red and blue."), "references": ["blue"]},
]


@pytest.fixture(scope="module")
def tokenizer():
    return toy_tokenizer()


def _trainer(tokenizer, tmp_path, rows=MIXED, peft_config=None, **overrides):
    values = dict(
        output_dir=str(tmp_path),
        report_to=[],
        save_strategy="no",
        gradient_checkpointing=False,
        per_device_train_batch_size=len(rows),
        max_steps=1,
        learning_rate=1e-3,
        seed=0,
    )
    values.update(overrides)
    return SpectrumTrainer(
        toy_model(tokenizer),
        args=SpectrumConfig(**values),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=peft_config,
    )


def _batch(trainer):
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    return trainer._prepare_inputs(trainer.data_collator(rows))  # on the model's device, as in training


def _expected_loss(trainer, batch, gem):
    """The loss from the model's full logits: each K = 1 group's summed token NLL (or GEM loss),
    each other group's spectrum loss, over the summed denominators."""
    logits = trainer.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    logits, labels = logits[:, :-1].float(), batch["labels"][:, 1:]
    token_logps = torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0)[..., None])[..., 0]
    seq = sequence_logps(token_logps, labels != -100)
    table = seq.new_zeros(batch["ref_mask"].shape).index_put((batch["group_index"], batch["slot_index"]), seq)
    args = trainer.args
    terms = spectrum_loss_per_group(
        table, batch["weights"], batch["ref_mask"], args.spectrum_alpha, args.spectrum_beta
    )
    single = batch["num_refs"] == 1
    per_row = gem_token_loss(logits, labels, args.gem_beta, args.gem_h).sum(-1) if gem else -seq
    single_term = seq.new_zeros(single.shape).index_add(0, batch["group_index"], per_row)
    return torch.where(single, single_term, terms.loss).sum() / batch["loss_denominator"].sum()


def _loss_and_grads(trainer, batch):
    trainer.model.zero_grad()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
    return loss.detach(), grads


@pytest.mark.parametrize("loss_type", ["nll", "gem"])
def test_trainer_loss_and_gradient_match_the_full_logits(tokenizer, tmp_path, loss_type):
    # nll: the regression check that the default path is what it was; gem: K = 1 groups summed GEM
    # loss with the same denominators, mixed with the spectrum loss of the other groups.
    trainer = _trainer(tokenizer, tmp_path, spectrum_loss_type=loss_type, gem_h="logsigmoid")
    trainer.model.train()
    batch = _batch(trainer)
    assert "prefix_ids" in batch  # multi-reference groups go through prefix sharing
    loss, grads = _loss_and_grads(trainer, batch)
    trainer.model.zero_grad()
    expected = _expected_loss(trainer, batch, gem=loss_type == "gem")
    expected.backward()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert grads.keys() == {n for n, p in trainer.model.named_parameters() if p.grad is not None}
    for name, grad in grads.items():
        expected_grad = trainer.model.get_parameter(name).grad
        torch.testing.assert_close(grad, expected_grad, rtol=1e-4, atol=1e-6, msg=name)


def test_gem_two_pass_chunks_and_eval_nll(tokenizer, tmp_path):
    results = []
    for chunk in (64, 1):
        trainer = _trainer(
            tokenizer, tmp_path / str(chunk), spectrum_loss_type="gem", spectrum_chunk_size=chunk
        )
        trainer.model.train()
        results.append(_loss_and_grads(trainer, _batch(trainer)))
    (loss, grads), (chunked_loss, chunked_grads) = results
    assert chunked_loss.item() == pytest.approx(loss.item(), rel=1e-6)
    for name, grad in grads.items():
        torch.testing.assert_close(chunked_grads[name], grad, rtol=1e-5, atol=1e-7, msg=name)
    # Evaluation reports the NLL whichever loss trains (as GEM's reference evaluates with CE).
    nll = _trainer(tokenizer, tmp_path / "nll")
    for each in (trainer, nll):
        each.model.eval()
    with torch.no_grad():
        assert trainer.compute_loss(trainer.model, _batch(trainer)).item() == pytest.approx(
            nll.compute_loss(nll.model, _batch(nll)).item(), rel=1e-6
        )


def test_gem_lora_training_run_loss_falls(tokenizer, tmp_path):
    from peft import LoraConfig

    rows = [
        {"prompt": _chat(f"Pick a number between {i} and {i + 1}."), "references": [str(i)]}
        for i in range(1, 9)
    ]
    trainer = _trainer(
        tokenizer,
        tmp_path,
        rows=rows,
        spectrum_loss_type="gem",
        gem_beta=0.7,
        max_steps=12,
        logging_steps=1,
        learning_rate=2e-2,
        peft_config=LoraConfig(r=8, lora_alpha=16, target_modules="all-linear", task_type="CAUSAL_LM"),
    )
    trainer.train()
    logs = [entry for entry in trainer.state.log_history if "loss" in entry]
    losses = [entry["loss"] for entry in logs]
    assert len(losses) == 12 and all(math.isfinite(x) for x in losses)
    # GEM's value is sum_v q_v z_v - z_y (not an NLL; it goes negative), so compare differences.
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.1, losses
    nll = [entry["gem/nll"] for entry in logs]  # the token NLL of the GEM rows, logged alongside
    assert nll[-1] < nll[0] - 0.1, nll
