"""The spectrum loss against hand-computed values and its invariants (DESIGN.md, "The loss")."""

import math

import pytest
import torch

from spectrum_tune.training.losses import (
    sequence_logps,
    spectrum_coefficients,
    spectrum_loss,
    spectrum_loss_per_group,
)


def _t(rows, dtype=torch.float64):
    return torch.tensor(rows, dtype=dtype)


def test_hand_computed_two_references():
    # s = [ln .5, ln .25]: mass M = ln .75, q = [2/3, 1/3], w = [.5, .5]
    # KL(w||q) = .5 ln(.5/(2/3)) + .5 ln(.5/(1/3)) = .5 ln .75 + .5 ln 1.5
    logps = _t([[math.log(0.5), math.log(0.25)]])
    weights = _t([[1.0, 1.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    terms = spectrum_loss_per_group(logps, weights, mask, alpha=2.0, beta=3.0)
    mass = -math.log(0.75)
    match = 0.5 * math.log(0.75) + 0.5 * math.log(1.5)
    assert terms.mass.item() == pytest.approx(mass, rel=1e-6)
    assert terms.match.item() == pytest.approx(match, rel=1e-6)
    assert terms.loss.item() == pytest.approx(2 * mass + 3 * match, rel=1e-6)
    # H(q) = -(2/3 ln 2/3 + 1/3 ln 1/3)
    entropy = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert terms.q_entropy.item() == pytest.approx(entropy, rel=1e-6)


def test_single_reference_is_sequence_nll():
    logps = _t([[-3.7], [-0.2]])
    loss = spectrum_loss(logps, torch.ones(2, 1), torch.ones(2, 1, dtype=torch.bool))
    assert loss.item() == pytest.approx((3.7 + 0.2) / 2, rel=1e-6)


def test_alpha_beta_one_is_weighted_nll_minus_entropy():
    torch.manual_seed(0)
    logps = -torch.rand(3, 5, dtype=torch.float64) * 10
    weights = torch.rand(3, 5, dtype=torch.float64)
    mask = torch.ones(3, 5, dtype=torch.bool)
    w = weights / weights.sum(-1, keepdim=True)
    expected = (-(w * logps).sum(-1) - (-(w * w.log()).sum(-1))).mean()
    assert spectrum_loss(logps, weights, mask).item() == pytest.approx(expected.item(), rel=1e-6)


def test_padding_changes_nothing():
    logps = _t([[-1.0, -2.0, -3.0]])
    weights = _t([[0.2, 0.3, 0.5]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    padded_logps = _t([[-1.0, -2.0, -3.0, 5.0, float("nan")]]).requires_grad_()
    padded_weights = _t([[0.2, 0.3, 0.5, 0.9, 0.4]])
    padded_mask = torch.tensor([[True, True, True, False, False]])
    reference = spectrum_loss(logps.requires_grad_(), weights, mask)
    padded = spectrum_loss(padded_logps, padded_weights, padded_mask)
    assert padded.item() == pytest.approx(reference.item(), rel=1e-7)
    padded.backward()
    reference.backward()
    assert torch.equal(padded_logps.grad[0, 3:], torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(padded_logps.grad[0, :3], logps.grad[0])


def test_groups_of_different_size_average_over_groups():
    logps = _t([[-1.0, -2.0], [-0.5, 0.0]])
    weights = _t([[1.0, 1.0], [1.0, 0.0]])
    mask = torch.tensor([[True, True], [True, False]])
    first = spectrum_loss(logps[:1], weights[:1], mask[:1])
    second = spectrum_loss(logps[1:, :1], weights[1:, :1], mask[1:, :1])
    assert spectrum_loss(logps, weights, mask).item() == pytest.approx(
        (first.item() + second.item()) / 2, rel=1e-7
    )


def test_weights_are_normalised_inside():
    logps = _t([[-1.0, -2.0, -4.0]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    assert spectrum_loss(logps, _t([[1.0, 2.0, 3.0]]), mask).item() == pytest.approx(
        spectrum_loss(logps, _t([[10.0, 20.0, 30.0]]), mask).item(), rel=1e-7
    )


def test_stable_for_very_unlikely_references():
    logps = torch.tensor([[-12000.0, -12001.0, -20000.0]], dtype=torch.float32, requires_grad=True)
    loss = spectrum_loss(logps, torch.ones(1, 3), torch.ones(1, 3, dtype=torch.bool))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logps.grad).all()


def test_bf16_inputs_accumulate_in_float32():
    logps = torch.tensor([[-1.5, -2.25]], dtype=torch.bfloat16)
    terms = spectrum_loss_per_group(logps, torch.ones(1, 2), torch.ones(1, 2, dtype=torch.bool))
    assert terms.loss.dtype == torch.float32
    per_token = torch.full((1, 300), -0.01, dtype=torch.bfloat16)
    # 300 * -0.01 summed in bf16 drifts; in float32 it is -3.0 up to bf16's rounding of -0.01
    total = sequence_logps(per_token, torch.ones(1, 300, dtype=torch.bool))
    assert total.dtype == torch.float32
    assert total.item() == pytest.approx(300 * float(torch.tensor(-0.01, dtype=torch.bfloat16)), rel=1e-5)


def test_coefficients_equal_autograd_gradient():
    torch.manual_seed(1)
    logps = (-torch.rand(4, 6, dtype=torch.float64) * 5).requires_grad_()
    weights = torch.rand(4, 6, dtype=torch.float64)
    mask = torch.rand(4, 6) > 0.3
    mask[:, 0] = True
    alpha, beta = 0.7, 1.9
    terms = spectrum_loss_per_group(logps, weights, mask, alpha, beta)
    terms.loss.sum().backward()
    coefficients = spectrum_coefficients(logps, weights, mask, alpha, beta)
    assert torch.allclose(coefficients.double(), logps.grad, atol=1e-6)


def test_sequence_logps_sums_only_masked_positions():
    per_token = _t([[-1.0, -2.0, -4.0], [-0.5, -0.25, -8.0]])
    mask = torch.tensor([[0, 1, 1], [1, 0, 0]])
    assert sequence_logps(per_token, mask).tolist() == [-6.0, -0.5]


@pytest.mark.parametrize(
    "weights, mask, message",
    [
        ([[1.0, -1.0]], [[True, True]], "non-negative"),
        ([[0.0, 0.0]], [[True, True]], "positive weight"),
        ([[1.0, 1.0]], [[False, False]], "at least one real reference"),
    ],
)
def test_bad_inputs_raise(weights, mask, message):
    with pytest.raises(ValueError, match=message):
        spectrum_loss(_t([[-1.0, -2.0]]), _t(weights), torch.tensor(mask))


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match=r"\[G, K\]"):
        spectrum_loss(_t([[-1.0, -2.0]]), _t([[1.0]]), torch.ones(1, 2, dtype=torch.bool))
